"""Both bundled checkpoints (the default `live` one and `live-prior-free`) load and score the bundled sample through
run_demo.py, each with the acoustic stream its feature spec names (slow: loads every model)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from realtime.paths import DEFAULT_CHECKPOINT, PRIOR_FREE_CHECKPOINT, SAMPLE_CLIP

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
BUNDLED = {"live": DEFAULT_CHECKPOINT, "live-prior-free": PRIOR_FREE_CHECKPOINT}


@pytest.fixture(scope="module")
def replays(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundled")
    rows = {}
    for name, ckpt in BUNDLED.items():
        if not (ckpt / "model.safetensors").is_file():
            pytest.skip(f"no bundled checkpoint at {ckpt}")
        jsonl = out / f"{name}.jsonl"
        r = subprocess.run([sys.executable, str(ROOT / "run_demo.py"), "--replay", str(SAMPLE_CLIP), "--headless",
                            "--fast", "--jsonl", str(jsonl), "--checkpoint", str(ckpt)], cwd=ROOT, capture_output=True,
                           text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
        assert r.returncode == 0, r.stderr[-3000:]
        rows[name] = [json.loads(x) for x in jsonl.read_text().splitlines()]
    return rows


@pytest.mark.parametrize("name", list(BUNDLED))
def test_each_bundled_checkpoint_scores_the_sample(replays, name):
    rows = replays[name]
    assert len(rows) == 32  # 8 s, a window every 0.25 s
    for r in rows:
        assert len(r["probs"]) == 7 and sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-5)
        assert math.isfinite(r["valence"])
    # a face in every window, the voice once the first acoustic block is out, words before the end
    assert all(r["present"]["visual"] for r in rows)
    assert sum(r["present"]["acoustic"] for r in rows) >= 24
    assert any(r["present"]["language"] for r in rows)


def test_the_prior_free_edges_are_its_own(replays):
    """Same clip, same features: the prior-free model's mean edges are not the default model's (which its hand-set
    prior holds near L->V and L->A), so the Settings choice shows something else."""
    mean = {n: np.mean([np.ravel(r["homo_edges"]) for r in rows], axis=0) for n, rows in replays.items()}
    assert np.abs(mean["live"] - mean["live-prior-free"]).max() > 0.05


@pytest.mark.parametrize("name", list(BUNDLED))
def test_each_bundled_checkpoint_ships_its_calibration_target(name):
    """The neutral reference loads against the checkpoint's own acoustic extractor and sits within a few
    population std of its input mean (a neutral voice is a typical voice, not an outlier)."""
    from dmd_model.checkpoint import load_checkpoint
    from realtime.baseline import load_neutral_reference

    model, spec, _ = load_checkpoint(BUNDLED[name])
    ref = load_neutral_reference(BUNDLED[name], spec.acoustic.extractor)["acoustic"]
    mean = model.input_mean_acoustic.numpy()[: len(ref)]
    std = model.input_std_acoustic.numpy()[: len(ref)]
    z = (ref - mean) / std
    assert len(ref) == 25 and 0.01 < np.abs(z).max() < 1.0
