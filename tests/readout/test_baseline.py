"""The per-session baseline: shrinkage and cap on a one-emotion session, full trust in a calibration."""

import numpy as np
import pytest

from realtime.baseline import BaselineConfig, SessionBaseline
from realtime.window import WindowSnapshot

# population (model input space): acoustic mean (0, 10), std (1, 2); blendshape log-odds mean 0, std 1 (2 scores)
STATS = {"acoustic": (np.array([0.0, 10.0]), np.array([1.0, 2.0])),
         "visual": (np.array([0.0, 0.0, 5.0]), np.array([1.0, 1.0, 1.0]))}
CFG = BaselineConfig(prior_s=30.0, cap_std=1.0, calibration_s=3.0, calibration_cap_std=3.0, score_dims=2)


def snap(t, acoustic=None, visual=None):
    a = np.zeros((0, 2), np.float32) if acoustic is None else np.tile(np.float32(acoustic), (16, 1))
    v = np.zeros((0, 3), np.float32) if visual is None else np.tile(np.float32(visual), (8, 1))
    return WindowSnapshot(t=t, visual=v, acoustic=a, words=[], present=(False, visual is not None, acoustic is not None))


def run(b, t0, t1, **kw):
    out, k = None, 0
    while True:
        t = round(t0 + 0.25 * k, 6)
        if t > t1 + 1e-9:
            return out
        out = b.push(snap(t, **kw))
        k += 1


def test_one_emotion_session_is_not_normalised_into_neutral():
    """A session that is all one emotion, 1.5 std above the population on every acoustic feature: after 30 s the
    running estimate has weight 30 / (30 + 30) = 0.5 (shift 0.75 std); after 120 s 0.8, i.e. 1.2 std, capped at
    1.0 std. The session stays 0.5 std above the population however long it lasts."""
    b = SessionBaseline(CFG, STATS, window_s=4.0)
    out = run(b, 0.25, 30.0, acoustic=[1.5, 13.0])
    assert b.status()["acoustic"].seen_s == 30.0 and b.status()["acoustic"].trust == 0.5
    np.testing.assert_array_equal(out.acoustic[0], np.float32([0.75, 11.5]))
    out = run(b, 30.25, 120.0, acoustic=[1.5, 13.0])
    np.testing.assert_array_equal(b.shift_std("acoustic"), [1.0, 1.0])
    np.testing.assert_array_equal(out.acoustic[0], np.float32([0.5, 11.0]))
    out = run(b, 120.25, 600.0, acoustic=[1.5, 13.0])
    np.testing.assert_array_equal(out.acoustic[0], np.float32([0.5, 11.0]))  # the cap holds for ever


def test_calibration_is_trusted_fully():
    """Running for 10 s at +0.5 std (shift 0.5 * 10/40 = 0.125 std), then a calibration on the same neutral level
    takes 3 s (12 windows) and shifts the whole 0.5 std: the neutral level lands exactly on the population mean; a
    later emotion (+2.5 std) keeps its full 2 std distance, and the estimate no longer moves."""
    b = SessionBaseline(CFG, STATS, window_s=4.0)
    out = run(b, 0.25, 10.0, acoustic=[0.5, 11.0])
    np.testing.assert_allclose(out.acoustic[0], [0.375, 10.75], rtol=0, atol=1e-6)
    b.calibrate()
    states = []
    for k in range(1, 13):
        out = b.push(snap(10.0 + 0.25 * k, acoustic=[0.5, 11.0]))
        states.append(b.status()["acoustic"].state)
    assert states == ["calibrating"] * 11 + ["calibrated"]
    np.testing.assert_array_equal(out.acoustic[0], np.float32([0.0, 10.0]))
    out = run(b, 13.25, 60.0, acoustic=[2.5, 15.0])
    np.testing.assert_array_equal(out.acoustic[0], np.float32([2.0, 14.0]))
    assert b.status()["acoustic"].trust == 1.0
    b.reset()
    assert b.push(snap(0.25, acoustic=[0.5, 11.0])).acoustic[0].tolist() == pytest.approx([0.5 - 0.5 * 0.25 / 30.25,
                                                                                            11.0 - 1.0 * 0.25 / 30.25])


def test_calibration_cap_and_blendshapes_in_log_odds():
    """A face whose two blendshape scores sit at sigmoid(1) and sigmoid(5) (1 and 5 std above in log-odds): a
    calibration shifts the first fully to sigmoid(0) = 0.5 and the second by the 3 std cap to sigmoid(2); the
    geometry column (index 2) is not touched."""
    b = SessionBaseline(CFG, STATS, window_s=4.0)
    b.calibrate()
    face = [1 / (1 + np.exp(-1.0)), 1 / (1 + np.exp(-5.0)), 7.0]
    out = run(b, 0.25, 3.0, visual=face)
    assert b.status()["visual"].state == "calibrated"
    np.testing.assert_allclose(out.visual[0], [0.5, 1 / (1 + np.exp(-2.0)), 7.0], rtol=0, atol=1e-6)
    assert b.status()["acoustic"].state == "calibrating"  # no voice yet


def test_calibration_gives_up_on_an_absent_modality():
    b = SessionBaseline(CFG, STATS, window_s=4.0)
    b.calibrate()
    run(b, 0.25, 15.0, visual=[0.5, 0.5, 0.0])
    assert b.status()["acoustic"].state == "calibrating"
    run(b, 15.25, 15.5, visual=[0.5, 0.5, 0.0])
    st = b.status()["acoustic"]
    assert st.state == "running" and st.calibration_failed and st.seen_s == 0.0


def test_only_the_new_rows_of_a_window_count():
    """Windows overlap: a window 0.25 s after the previous one adds only its newest 1/16 of the rows, for 0.25 s."""
    b = SessionBaseline(BaselineConfig(prior_s=0.0, cap_std=10.0, score_dims=2), STATS, window_s=4.0)
    b.push(snap(4.0, acoustic=[0.0, 10.0]))  # 4 s of population-level voice
    rows = np.tile(np.float32([100.0, 10.0]), (16, 1))
    rows[-1] = [4.25, 10.0]
    b.push(WindowSnapshot(t=4.25, visual=np.zeros((0, 3), np.float32), acoustic=rows, words=[],
                          present=(False, False, True)))
    assert b.status()["acoustic"].seen_s == 4.25
    np.testing.assert_allclose(b.shift_std("acoustic"), [4.25 * 0.25 / 4.25, 0.0], rtol=0, atol=1e-12)


def test_the_face_rows_span_the_face_window_not_the_whole_window():
    """The window's face rows cover only its last second (`WindowConfig.face_span_s`): a window 0.25 s after the
    previous one brings its newest quarter of them (2 of 8), not 1/16 as the 4 s voice rows do."""
    z = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 3.0])  # blendshape log-odds of the 8 face rows, oldest first
    rows = np.zeros((8, 3), np.float32)
    rows[:, 0] = 1.0 / (1.0 + np.exp(-z))
    rows[:, 1], rows[:, 2] = 0.5, 5.0
    shifts = {}
    for span in (1.0, None):
        b = SessionBaseline(BaselineConfig(prior_s=0.0, cap_std=10.0, score_dims=2), STATS, window_s=4.0,
                            visual_window_s=span)
        b.push(snap(4.0, visual=[0.5, 0.5, 5.0]))  # 4 s of population-level face (log-odds 0)
        b.push(WindowSnapshot(t=4.25, visual=rows, acoustic=np.zeros((0, 2), np.float32), words=[],
                              present=(False, True, False)))
        shifts[span] = b.shift_std("visual")
    # the 0.25 s hop is weighed 0.25 of 4.25 s: its rows' mean log-odds, (1 + 3) / 2 with the 1 s span, 3 without
    np.testing.assert_allclose(shifts[1.0], [2.0 * 0.25 / 4.25, 0.0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(shifts[None], [3.0 * 0.25 / 4.25, 0.0], rtol=0, atol=1e-6)


def test_disabled_and_absent():
    b = SessionBaseline(BaselineConfig(enabled=False, score_dims=2), STATS, window_s=4.0)
    s = snap(1.0, acoustic=[3.0, 3.0])
    assert b.push(s) is s and b.status()["acoustic"].state == "off"
    s = snap(1.25)
    assert b.push(s) is s
    with pytest.raises(ValueError):
        BaselineConfig(modalities=("smell",))


def test_only_the_leading_level_columns_of_the_voice_are_shifted():
    """With Whisper states behind the LLDs, only the first ``level_dims`` acoustic columns get a baseline: the same
    one-emotion session as above, with a third (encoder-state) column that must come out exactly as it went in."""
    stats = {"acoustic": (np.array([0.0, 10.0, 0.0]), np.array([1.0, 2.0, 1.0])), "visual": STATS["visual"]}
    b = SessionBaseline(BaselineConfig(prior_s=30.0, cap_std=1.0, score_dims=2, level_dims=2), stats, window_s=4.0)
    out = run(b, 0.25, 30.0, acoustic=[1.5, 13.0, 4.0])
    np.testing.assert_array_equal(out.acoustic[0], np.float32([0.75, 11.5, 4.0]))
    assert b.shift_std("acoustic").shape == (2,)


def test_calibration_lands_on_the_training_neutral_when_the_checkpoint_has_one():
    """Neutral reference (-0.5, 9.0): a calibration on the speaker's neutral (0.5, 11.0) shifts by (1.0, 1.0) std
    so that it lands on the training neutral, not on the population mean (0, 10); the running estimate before it
    still shrinks towards the population mean."""
    b = SessionBaseline(CFG, STATS, window_s=4.0, neutral={"acoustic": np.array([-0.5, 9.0])})
    out = run(b, 0.25, 10.0, acoustic=[0.5, 11.0])
    np.testing.assert_allclose(out.acoustic[0], [0.375, 10.75], rtol=0, atol=1e-6)
    b.calibrate()
    out = run(b, 10.25, 13.0, acoustic=[0.5, 11.0])
    assert b.status()["acoustic"].state == "calibrated"
    np.testing.assert_array_equal(b.shift_std("acoustic"), [1.0, 1.0])
    np.testing.assert_array_equal(out.acoustic[0], np.float32([-0.5, 9.0]))
    with pytest.raises(ValueError, match="3 values"):
        SessionBaseline(CFG, STATS, window_s=4.0, neutral={"acoustic": np.zeros(3)})


def test_neutral_reference_file_is_checked_at_load(tmp_path):
    from realtime.baseline import NEUTRAL_FILE, load_neutral_reference, write_neutral_reference
    from realtime.features.specs import EGEMAPS_LLD_NAMES

    assert load_neutral_reference(tmp_path, "x") is None  # no file: the population mean, as before
    levels = np.arange(len(EGEMAPS_LLD_NAMES), dtype=float)
    write_neutral_reference(tmp_path, levels, "opensmile.x", 7, ["tess"])
    np.testing.assert_array_equal(load_neutral_reference(tmp_path, "opensmile.x")["acoustic"], levels)
    with pytest.raises(ValueError, match="measured with acoustic extractor 'opensmile.x'"):
        load_neutral_reference(tmp_path, "opensmile.y")
    (tmp_path / NEUTRAL_FILE).write_text('{"acoustic": {"levels": [1, 2], "feature_names": ["a", "b"]}}')
    with pytest.raises(ValueError, match="eGeMAPS LLDs in their order"):
        load_neutral_reference(tmp_path, None)
    with pytest.raises(ValueError, match="finite"):
        write_neutral_reference(tmp_path, levels * np.nan, "opensmile.x", 7, ["tess"])
