"""The scorer's engines (traced, infer, forward) give the same scores for the same windows, on the bundled model."""

import numpy as np
import pytest
from fakes import FakeText

from dmd_model.feature_spec import Word
from realtime.language import LanguageStep
from realtime.scorer import DEFAULT_CHECKPOINT, Scorer, ScorerConfig
from realtime.window import WindowSnapshot

TOL = 1e-5


def windows(cfg):
    rng = np.random.default_rng(0)
    dv, da = cfg.input_dims[1], cfg.input_dims[2]
    out = []
    for i, (present, nv, na) in enumerate([((True, True, True), 32, 64), ((False, True, True), 5, 64),
                                           ((True, False, True), 0, 17), ((True, True, False), 32, 0),
                                           ((False, False, False), 0, 0)]):
        words = [Word(f"w{i}{k}", 0.1 * k, 0.1 * k + 0.05) for k in range(3)] if present[0] else []
        out.append(WindowSnapshot(t=float(i), visual=rng.random((nv, dv), np.float32),
                                  acoustic=rng.standard_normal((na, da)).astype(np.float32), words=words,
                                  present=present))
    return LanguageStep(FakeText(), cfg.seq_lens[0], cfg.input_dims[0]).push(out)


def flat(r):
    heads = [v for b in ("homo", "hetero") for m in "LVA" for v in [r.heads[b][m]["valence"]]]
    return np.array([r.valence, *r.probs.values(), *heads, *np.ravel(r.homo_edges), *np.ravel(r.hetero_edges)])


def test_engines_agree_on_the_bundled_checkpoint():
    if not (DEFAULT_CHECKPOINT / "model.safetensors").is_file():
        pytest.skip(f"no bundled checkpoint at {DEFAULT_CHECKPOINT}")
    results = {}
    for engine in ("forward", "infer", "traced"):
        s = Scorer(ScorerConfig(device="cpu", engine=engine, max_batch=4), live_spec=None).start()
        snaps = windows(s.cfg)
        results[engine] = [s.score(snaps), s.score(snaps[:1])]  # 5 windows: batches of 4 and 1; then batch 1
    ref = results["forward"]
    for engine in ("infer", "traced"):
        for got, want in zip(results[engine], ref):
            assert [r.emotion for r in got] == [r.emotion for r in want]
            for a, b in zip(got, want):
                fa, fb = flat(a), flat(b)
                assert fa.shape == fb.shape
                # NaN where a window claims nothing (no modality present), in every engine alike
                assert np.allclose(fa, fb, rtol=0, atol=TOL, equal_nan=True), engine


def test_unknown_engine_is_a_clear_error():
    if not (DEFAULT_CHECKPOINT / "model.safetensors").is_file():
        pytest.skip(f"no bundled checkpoint at {DEFAULT_CHECKPOINT}")
    with pytest.raises(ValueError, match="unknown scorer engine"):
        Scorer(ScorerConfig(device="cpu", engine="fast"), live_spec=None).start()


def test_the_model_shapes_are_read_without_torch():
    """The pipeline builds its window and language step from the checkpoint's config before the model loads:
    reading it imports no torch and builds nothing."""
    import subprocess
    import sys

    if not (DEFAULT_CHECKPOINT / "config.json").is_file():
        pytest.skip(f"no bundled checkpoint at {DEFAULT_CHECKPOINT}")
    code = ("import sys; from realtime.scorer import model_config; c = model_config(sys.argv[1]); "
            "print(tuple(c.seq_lens), tuple(c.input_dims), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(DEFAULT_CHECKPOINT)], capture_output=True, text=True,
                         cwd=DEFAULT_CHECKPOINT.parents[1], timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(") ")[-1].strip() == "False" and "(32, 32, 64)" in out.stdout


def test_resident_buffers_keep_nothing_from_an_earlier_batch():
    """The CPU scorer fills its resident input buffers in place: a short window scored after long ones must score
    exactly as it does in a fresh scorer (the rows the long windows left behind are cleared), and a batch scores
    each window as it scores alone."""
    if not (DEFAULT_CHECKPOINT / "model.safetensors").is_file():
        pytest.skip(f"no bundled checkpoint at {DEFAULT_CHECKPOINT}")
    used = Scorer(ScorerConfig(device="cpu", max_batch=4), live_spec=None).start()
    snaps = windows(used.cfg)
    used.score(snaps[:1] * 4)  # every row of every buffer filled
    short = snaps[2]  # 17 acoustic rows, no face
    after = used.score([short])[0]
    # what the model was handed: zero padding past each length, as the training packs it
    assert not used._buf[2][0, 17:].any() and not used._buf[1][0].any()
    fresh = Scorer(ScorerConfig(device="cpu", max_batch=4), live_spec=None).start().score([short])[0]
    assert after.emotion == fresh.emotion
    np.testing.assert_array_equal(flat(after), flat(fresh))
    batch = used.score(snaps[:4])
    for i, r in enumerate(batch):
        np.testing.assert_allclose(flat(r), flat(used.score([snaps[i]])[0]), rtol=0, atol=TOL)
