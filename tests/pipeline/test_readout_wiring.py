"""The pipeline adds the readout, the modality votes and the baseline state to every result; nothing present is
"no signal"; a calibration asked for through the pipeline reaches the baseline."""

import json

import pytest
from fakes import FakeCore, FakeSource, FakeText, fake_scorer

from realtime.pipeline import Pipeline, PipelineConfig
from realtime.sinks.jsonl import JsonlSink
from realtime.window import WindowConfig


@pytest.fixture(scope="module")
def scorer(live_checkpoint):
    return fake_scorer(live_checkpoint)


def run(scorer, source, tmp_path, calibrate=False):
    cfg = PipelineConfig(window=WindowConfig(window_s=1.0, hop_s=0.25))
    results = []
    sink = JsonlSink(tmp_path / "out.jsonl")
    p = Pipeline(cfg, source, [results.append, sink], scorer=scorer, text_encoder=FakeText(),
                 cores={n: FakeCore(n) for n in ("face", "acoustic", "transcript")})
    if calibrate:
        p.calibrate()
    p.start()
    assert p.wait(20)
    assert p.stop() == []
    sink.close()
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    return results, lines


def test_readout_votes_and_baseline_in_every_result(scorer, tmp_path):
    results, lines = run(scorer, FakeSource(duration=3.0), tmp_path)
    assert len(lines) == 12
    emotions = set(scorer.emotions)
    for r, d in zip(results, lines):
        assert d["emotion"] in emotions and d["probs"]  # the raw scores stay
        assert d["readout"]["label"] in emotions | {"uncertain"}
        assert set(d["readout"]["probs"]) == emotions
        assert set(d["agreement"]) == {"V", "A"} | ({"L"} if r.present["language"] else set())
        assert d["baseline"]["acoustic"]["state"] == "running"
    assert lines[0]["readout"]["probs"] == {k: round(v, 6) for k, v in lines[0]["probs"].items()}
    seen = [d["baseline"]["acoustic"]["seen_s"] for d in lines]
    assert seen == [0.25 * i for i in range(1, 13)]


def test_nothing_present_is_no_signal(scorer, tmp_path):
    results, lines = run(scorer, FakeSource(duration=2.0, video=False, audio=False), tmp_path)
    assert len(lines) == 8
    for d in lines:
        assert not any(d["present"].values())
        assert (d["emotion"], d["valence"], d["probs"]) == ("no signal", None, {})
        assert d["readout"]["label"] == "no signal" and d["agreement"] == {}


def test_calibrate_through_the_pipeline(scorer, tmp_path):
    """Fake voice rows are all ones; the untrained checkpoint's population is mean 0, std 1: after 3 s of voice the
    calibration shifts every acoustic feature by the full 1 std (the running estimate alone would give 3/33)."""
    results, lines = run(scorer, FakeSource(duration=4.0), tmp_path, calibrate=True)
    states = [d["baseline"]["acoustic"]["state"] for d in lines]
    assert states == ["calibrating"] * 11 + ["calibrated"] * 5
    assert lines[-1]["baseline"]["acoustic"]["max_shift_std"] == 1.0
    assert lines[-1]["baseline"]["visual"]["state"] == "calibrated"


def test_a_voice_without_a_face_is_smoothed_with_the_voice_time_constant(scorer, tmp_path):
    """The pipeline hands the readout each window's modalities: with no video, the smoothed probabilities are the
    exponential average of the raw ones with `ReadoutConfig.tau_voice_s` (2 s), not the face's 0.5 s."""
    import math

    from realtime.readout import ReadoutConfig

    results, lines = run(scorer, FakeSource(duration=2.0, video=False), tmp_path)
    voiced = [d for d in lines if d["present"]["acoustic"]]
    assert voiced and not any(d["present"]["visual"] for d in lines)
    first, second = voiced[0], voiced[1]
    a = 1 - math.exp(-(second["t"] - first["t"]) / ReadoutConfig.tau_voice_s)
    for k, p in second["probs"].items():
        expected = first["probs"][k] + a * (p - first["probs"][k])
        assert second["readout"]["probs"][k] == pytest.approx(expected, abs=2e-6)


def test_calibration_targets_the_checkpoints_neutral_reference(live_checkpoint, tmp_path):
    """The same session against a copy of the checkpoint that ships a neutral reference of -0.5 on every level: the
    calibrated shift is (1 - (-0.5)) / 1 = 1.5 std, not the 1.0 std onto the population mean above."""
    import shutil

    from dmd_model.checkpoint_config import read_config
    from realtime.baseline import write_neutral_reference

    ckpt = tmp_path / "with_reference"
    shutil.copytree(live_checkpoint, ckpt)
    spec = read_config(ckpt)[1]
    write_neutral_reference(ckpt, [-0.5] * 25, spec.acoustic.extractor, 1, ["test"])
    scorer = fake_scorer(ckpt)
    assert scorer.neutral_reference["acoustic"].tolist() == [-0.5] * 25
    results, lines = run(scorer, FakeSource(duration=4.0), tmp_path, calibrate=True)
    assert lines[-1]["baseline"]["acoustic"]["state"] == "calibrated"
    assert lines[-1]["baseline"]["acoustic"]["max_shift_std"] == 1.5
