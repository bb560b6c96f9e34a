"""The bootstrap recipe end to end on a tiny subset, and the bundled checkpoint on the shared sample clip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parents[2]
BUNDLED = ROOT / "assets" / "dmd_live"
PRIOR_FREE = ROOT / "assets" / "dmd_live_prior_free"
SAMPLE = ROOT / "assets" / "WDA_KatieHill_000.mp4"


def test_help_runs():
    r = subprocess.run([sys.executable, "-m", "recipes.bootstrap", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert "--limit-per-class" in r.stdout and "--seed" in r.stdout


def test_splits_are_disjoint_by_speaker_subject_and_source(shared_data):
    from recipes import corpora

    items = corpora.media_items(shared_data)
    groups: dict = {}
    for it in items:
        if it.corpus == "fer2013":
            continue
        groups.setdefault((it.corpus, it.group), set()).add(it.split)
    assert all(len(s) == 1 for s in groups.values()), "a speaker or subject spans two splits"
    ravdess = {(int(it.group.split("_")[1]), it.split) for it in items if it.corpus == "ravdess"}
    assert {a for a, s in ravdess if s == "test"} == set(range(19, 25))
    fer = {it.split for it in items if it.corpus == "fer2013" and it.name.startswith(("PublicTest", "PrivateTest"))}
    assert fer == {"test"}
    text = corpora.goemotions_items(shared_data)
    assert {it.key.split("/")[1] for it in text if it.split == "test"} == {"test"}


def test_text_corpora_leave_a_held_out_corpus_out_of_every_text_pool(shared_data):
    """`--text-corpora goemotions` keeps MELD out of the pools, the text-only extras and the anchors, so that
    `recipes.crosscorpus` can score MELD as a held-out corpus; an unknown name is refused."""
    from recipes.bootstrap import build_parser, select_items

    args = build_parser().parse_args(["--data", str(shared_data), "--out", "unused", "--corpora", "ck48",
                                      "--text-corpora", "goemotions", "--text-limit-per-class", "3",
                                      "--test-limit-per-class", "2", "--text-only", "50", "--emobank", "0"])
    media, text, extras, emob = select_items(args)
    assert {it.corpus for it in text} == {it.corpus for it in extras} == {"goemotions"}
    assert len(extras) == 50 and emob == []
    assert {it.corpus for it in media} == {"ck48"}
    both = select_items(build_parser().parse_args(["--data", str(shared_data), "--out", "unused", "--corpora", "ck48",
                                                   "--text-limit-per-class", "3", "--test-limit-per-class", "2"]))[1]
    assert {it.corpus for it in both} == {"goemotions", "meld"}
    with pytest.raises(SystemExit, match="choose one or more"):
        select_items(build_parser().parse_args(["--data", str(shared_data), "--out", "unused",
                                                "--text-corpora", "goemotion"]))


def test_pairing_targets():
    from recipes.pairing import SplitPools, Unit, composite_samples, pack_samples

    rng = np.random.default_rng(0)
    mk = lambda m, c, d, t: Unit(f"{m}-{c}", np.full((t, d), 0.5, np.float32), c, 0.1)  # noqa: E731
    pools = SplitPools(
        face={c: [mk("f", c, 321, 10)] for c in ("happy", "sad")},
        voice={c: [mk("v", c, 25, 100)] for c in ("happy", "sad")},
        text={c: [mk("t", c, 384, 5)] for c in ("happy", "sad")},
    )
    same = pack_samples(composite_samples(pools, 4, rng, 0.0), (32, 32, 64))
    assert same.emotion.max(1).min() == 1.0 and same.present.all()
    assert (same.lengths == [5, 10, 64]).all()
    cross = pack_samples(composite_samples(pools, 50, rng, 1.0), (32, 32, 64))
    assert np.allclose(cross.emotion.sum(1), 1.0)
    assert np.allclose(np.sort(cross.emotion, 1)[:, -2:], [1 / 3, 2 / 3])


def test_speaker_balanced_voices_draw_every_speaker_equally_often():
    from collections import Counter

    from recipes.pairing import SplitPools, Unit, balanced_draw, composite_samples

    x = np.zeros((4, 25), np.float32)
    # one speaker with 10 clips of the class, two with 2: clip by clip the first would be 10 of every 14 draws
    voices = ([Unit(f"big{i}", x, "sad", -0.5, "big") for i in range(10)]
              + [Unit(f"{g}{i}", x, "sad", -0.5, g) for g in ("a", "b") for i in range(2)])
    drawn = balanced_draw(voices, 60, np.random.default_rng(0))
    assert Counter(u.group for u in drawn) == {"big": 20, "a": 20, "b": 20}
    assert Counter(u.key for u in drawn if u.group == "a") == {"a0": 10, "a1": 10}  # a speaker's clips cycled
    assert Counter(u.key for u in drawn if u.group == "big") == {f"big{i}": 2 for i in range(10)}

    pools = SplitPools(voice={"sad": voices}, face={"sad": [Unit("f", np.zeros((2, 321), np.float32), "sad", -0.5)]})
    by_speaker = composite_samples(pools, 60, np.random.default_rng(0), voice_groups=True)
    assert Counter(t[2].group for t in by_speaker) == {"big": 20, "a": 20, "b": 20}
    by_clip = composite_samples(pools, 56, np.random.default_rng(0))  # the default: 4 passes over the 14 clips
    assert Counter(t[2].group for t in by_clip) == {"big": 40, "a": 8, "b": 8}


def test_face_noise_touches_only_the_blendshape_scores():
    from recipes.pairing import SCORE_DIMS, Unit, pack_samples

    x = np.full((10, 321), 0.5, np.float32)
    x[:, SCORE_DIMS:] = -0.25  # geometry can be negative (head pose, mouth-corner lift)
    x[:, 0] = 0.0  # a blendshape at exactly 0 stays near 0: the noise is on the log-odds, not additive
    noisy = pack_samples([[None, Unit("f", x, "happy", 0.5), None]], (4, 10, 8), np.random.default_rng(0), 0.1).visual[0]
    assert np.all(noisy[:, SCORE_DIMS:] == -0.25)
    z = np.log(noisy[:, 1:SCORE_DIMS]) - np.log1p(-noisy[:, 1:SCORE_DIMS])  # log-odds of 0.5 is 0: z is the noise
    assert 0.08 < z.std() < 0.12 and abs(z.mean()) < 0.02
    assert np.all(noisy[:, 0] < 2e-4)


def test_face_scale_is_one_factor_per_face_on_the_scores_only():
    from recipes.pairing import SCORE_DIMS, Unit, pack_samples

    x = np.full((10, 321), 0.5, np.float32)
    x[:, SCORE_DIMS:] = -0.25
    x[:, 0] = 0.9  # 0.9 * up to 1.3 would pass 1: clipped
    faces = [[None, Unit(f"f{i}", x, "happy", 0.5), None] for i in range(200)]
    v = pack_samples(faces, (4, 10, 8), np.random.default_rng(0), 0.0, face_scale=0.3).visual
    assert np.all(v[:, :, SCORE_DIMS:] == -0.25)
    factor = v[:, :, 1] / 0.5
    assert np.allclose(factor, factor[:, :1], atol=1e-6)  # one factor per face, the same on every frame
    assert 0.7 <= factor.min() < 0.75 and 1.25 < factor.max() <= 1.3
    assert v[:, :, 0].max() == 1.0 and np.allclose(v[:, :, 0], np.minimum(0.9 * factor, 1.0), atol=1e-6)
    same = pack_samples(faces, (4, 10, 8), np.random.default_rng(0), 0.0).visual  # off: untouched
    assert np.array_equal(same[:, :, :SCORE_DIMS], np.broadcast_to(x[:, :SCORE_DIMS], same[:, :, :SCORE_DIMS].shape))


def test_voice_offset_is_one_shift_per_clip_on_the_levels_only():
    from recipes.pairing import Unit, pack_samples

    x = np.arange(6 * 30, dtype=np.float32).reshape(6, 30) / 7.0
    voices = [[None, None, Unit(f"v{i}", x, "sad", -0.5)] for i in range(300)]
    std = np.linspace(0.5, 2.0, 25)
    a = pack_samples(voices, (4, 8, 6), np.random.default_rng(3), 0.0, dims=(384, 321, 30), voice_offset=std).acoustic
    assert np.array_equal(a[:, :, 25:], np.broadcast_to(x[:, 25:], a[:, :, 25:].shape))  # Whisper columns untouched
    shift = a[:, :, :25] - x[:, :25]
    assert np.allclose(shift, shift[:, :1], atol=1e-5)  # one offset per clip, the same on every frame
    z = shift[:, 0] / std  # the draws, in units of each level's std
    assert abs(z.mean()) < 0.05 and 0.95 < z.std() < 1.05
    draws = np.random.default_rng(3).normal(0.0, 1.0, (300, 25))  # the packer's own draws, clip by clip
    assert np.allclose(shift[:, 0], -draws * std, atol=1e-5)
    off = pack_samples(voices, (4, 8, 6), np.random.default_rng(3), 0.0, dims=(384, 321, 30)).acoustic
    assert np.array_equal(off, np.broadcast_to(x, off.shape))  # off (the default): untouched


@pytest.mark.slow
def test_recipe_end_to_end_tiny(shared_data, tmp_path):
    """MiniLM's top layers tuned on a few lines (recipes.finetune_text), then the recipe trained on their states."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    overlay = tmp_path / "ft" / "text_encoder.safetensors"
    ft = subprocess.run([sys.executable, "-m", "recipes.finetune_text", "--data", str(shared_data), "--out", str(overlay),
                         "--limit", "40", "--epochs", "1", "--threads", "1", "--no-progress"],
                        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert ft.returncode == 0, ft.stdout[-3000:] + ft.stderr[-3000:]
    meta = json.loads(overlay.with_suffix(".json").read_text())
    assert meta["layers"] == [4, 5] and len(meta["history"]) == 1
    assert 0.0 <= meta["best_valid_goemotions_macro_f1"] <= 1.0
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "recipes.bootstrap", "--data", str(shared_data), "--out", str(out),
           "--text-overlay", str(overlay),
           "--corpora", "ravdess,fer2013", "--limit-per-class", "1", "--test-limit-per-class", "1",
           "--text-limit-per-class", "2", "--train-per-class", "4", "--eval-cap-per-class", "2", "--valid-cap-per-class", "2", "--text-only", "8",
           "--emobank", "4", "--epochs", "1", "--no-progress"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    from dmd_model.checkpoint import load_checkpoint
    from dmd_model.data import load_packed

    from realtime.config import PipelineConfig, StreamSettings, stream_config
    from realtime.features.specs import TEXT_OVERLAY_FILE, language_spec

    model, spec, _ = load_checkpoint(out / "checkpoint")
    assert spec is not None and spec.visual.dim == 321
    assert spec.language == language_spec(None, overlay)  # the spec names the overlay the states came from
    assert (out / "checkpoint" / TEXT_OVERLAY_FILE).read_bytes() == overlay.read_bytes()
    live = stream_config(PipelineConfig(), StreamSettings(str(out / "checkpoint")), live=False)
    spec.check_compatible(live.feature_spec())  # the page would run MiniLM with the checkpoint's copy
    assert sorted(p.name for p in (out / "text").iterdir()) == sorted(
        f"{c}_L32_ov{language_spec(None, overlay).extractor_version[-12:]}.npz" for c in ("emobank", "goemotions", "meld"))
    ds = load_packed(out / "composite.npz")
    assert len(ds.split("train")) > 0 and len(ds.split("test")) > 0
    res = json.loads((out / "checkpoint" / "bootstrap_eval.json").read_text())
    assert set(res["anchors"]) == {"fer", "ravdess", "goemotions"}
    assert (out / "edges.png").stat().st_size > 0
    # the calibration's target: the one neutral RAVDESS training clip's levels (limit 1 per class)
    from realtime.baseline import NEUTRAL_FILE, load_neutral_reference

    doc = json.loads((out / "checkpoint" / NEUTRAL_FILE).read_text())["acoustic"]
    assert doc["n_items"] == 1 and doc["corpora"] == ["ravdess"]
    assert load_neutral_reference(out / "checkpoint", spec.acoustic.extractor)["acoustic"].shape == (25,)
    # re-running reuses the caches: nothing left to extract
    r2 = subprocess.run(cmd + ["--stop-after", "pack"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r2.returncode == 0 and "0 to extract" in r2.stdout


@pytest.mark.slow
@pytest.mark.parametrize("bundled", [BUNDLED, PRIOR_FREE], ids=["live", "live-prior-free"])
def test_bundled_checkpoint_scores_the_extracted_sample(bundled, tmp_path):
    """``python -m realtime.extract`` with the acoustic stream the checkpoint names gives features it accepts."""
    if not (bundled / "model.safetensors").is_file():
        pytest.skip(f"no bundled checkpoint at {bundled}")
    import torch

    from dmd_model.checkpoint import load_checkpoint
    from dmd_model.checkpoint_config import read_config
    from dmd_model.data import load_feature_dir

    from realtime.features.acoustic import AcousticConfig

    from realtime.features.specs import TEXT_OVERLAY_FILE, TEXT_OVERLAY_TAG

    named = read_config(bundled)[1]
    flags = ["--whisper-states"] if AcousticConfig.reads_states(named.acoustic.extractor) else []
    if TEXT_OVERLAY_TAG in named.language.extractor:
        flags += ["--text-overlay", str(bundled / TEXT_OVERLAY_FILE)]
    r = subprocess.run([sys.executable, "-m", "realtime.extract", str(SAMPLE), "--out", str(tmp_path), *flags],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stderr[-2000:]
    model, spec, _ = load_checkpoint(bundled)
    ds = load_feature_dir(tmp_path, model.cfg.seq_lens)
    spec.check_compatible(ds.spec, what=str(SAMPLE))
    s = next(s for s in ds.splits.values() if len(s))
    assert s.present.all(), "the sample clip has a face, a voice and words"
    with torch.inference_mode():
        out = model(torch.from_numpy(s.language), torch.from_numpy(s.visual), torch.from_numpy(s.acoustic),
                    lengths=torch.from_numpy(s.lengths), present=torch.from_numpy(s.present))
    assert torch.isfinite(out.prediction).all()
    assert out.prediction.shape == (1, 1 + len(model.cfg.emotions))
    assert torch.isfinite(out.homo_edges).all() and torch.isfinite(out.hetero_edges).all()


def test_probes_count_a_missed_face_as_an_error():
    from recipes.probes import run_probe

    rng = np.random.default_rng(0)
    classes = np.array(["happy", "sad"])
    ytr = classes[np.arange(200) % 2]
    xtr = rng.normal(size=(200, 5)) + np.where(ytr == "happy", 3.0, -3.0)[:, None]
    yte = classes[np.arange(10) % 2]
    xte = rng.normal(size=(10, 5)) * 0.1 + np.where(yte == "happy", 3.0, -3.0)[:, None]
    found = np.ones(10, bool)
    found[[0, 3]] = False  # no face: an error whatever the features say
    res = run_probe("face", (xtr, ytr, np.ones(200, bool)), (xte, yte, found))
    for name in ("logistic_regression", "mlp", "gradient_boosting", "vote", "logistic_regression_log_odds", "mlp_log_odds"):
        assert res[name]["acc"] == 0.8 and res[name]["acc_found"] == 1.0, name
    assert (res["n_train"], res["n_test"], res["n_test_found"]) == (200, 10, 8)


def test_voice_levels_are_per_speaker_row_means_in_std_units():
    from recipes.voice_levels import offsets_in_std, speaker_levels

    a = np.array([[1.0, 10.0, 99.0], [3.0, 30.0, 99.0]])  # speaker s1, clip 1 (2 rows)
    b = np.array([[5.0, 50.0, 99.0]])                      # speaker s1, clip 2 (1 row): rows, not clips, are averaged
    c = np.array([[0.0, 0.0, 99.0]])                       # speaker s2
    lv = speaker_levels([a, None, b, c], ["s1", "s1", "s1", "s2"], 2)
    assert set(lv) == {"s1", "s2"}
    assert np.array_equal(lv["s1"], [3.0, 30.0]) and np.array_equal(lv["s2"], [0.0, 0.0])
    off = offsets_in_std(lv, np.array([1.0, 10.0]), np.array([2.0, 10.0]))
    assert np.array_equal(off["s1"], [1.0, 2.0]) and np.array_equal(off["s2"], [-0.5, -1.0])


@pytest.mark.parametrize("flag", ["--voice-offset", "--face-scale", "--face-noise"])
def test_a_negative_augmentation_spread_is_refused_before_anything_is_written(tmp_path, capsys, flag):
    from recipes.bootstrap import main

    out = tmp_path / "run"
    assert main(["--data", str(tmp_path), "--out", str(out), flag, "-0.5"]) == 2
    assert "0 (off) or more" in capsys.readouterr().err
    assert not out.exists()


def test_finetune_text_on_one_corpus_trains_on_it_and_scores_both(shared_data):
    """--corpora goemotions: MELD's lines leave the train split (the tuning must not see them) and stay in the
    scored splits, so the run shows how the tuned layers carry over."""
    from recipes import finetune_text

    both = finetune_text.load_lines(shared_data, 40)
    one = finetune_text.load_lines(shared_data, 40, ("goemotions",))
    assert {r[2] for r in one["train"]} == {"goemotions"} and {r[2] for r in both["train"]} == {"goemotions", "meld"}
    assert one["train"] == [r for r in both["train"] if r[2] == "goemotions"]
    assert one["valid"] == both["valid"] and one["test"] == both["test"]
    assert {r[2] for r in one["valid"]} == {"goemotions", "meld"}


def test_finetune_text_refuses_an_unknown_corpus(capsys):
    from recipes import finetune_text

    with pytest.raises(SystemExit, match="--corpora takes goemotions, meld"):
        finetune_text.main(["--out", "x.safetensors", "--corpora", "goemotions,isear"])
