"""The "now" box: smoothed readout, raw window, modality votes, baseline state, no signal."""

import math
from types import SimpleNamespace

from realtime.ui import readout_view

HEADS = {"homo": {"L": {"emotion": "happy"}, "V": {"emotion": "happy"}, "A": {"emotion": "angry"}},
         "hetero": {"L": {"emotion": "neutral"}, "V": {"emotion": "happy"}, "A": {"emotion": "angry"}}}


def result(**kw):
    d = dict(t=2.5, emotion="neutral", valence=-0.2, probs={"happy": 0.4, "neutral": 0.6}, heads=HEADS,
             present={"language": True, "visual": True, "acoustic": True},
             readout={"label": "happy", "probs": {"happy": 0.7, "neutral": 0.3}, "valence": 0.56, "top": "happy"},
             baseline={"visual": {"state": "running", "trust": 0.2143, "calibration_failed": False},
                       "acoustic": {"state": "calibrated", "trust": 1.0}})
    d.update(kw)
    return SimpleNamespace(**d)


def test_shows_the_smoothed_readout_and_the_raw_window():
    h = readout_view.now_html(result(), 10)
    assert '<span id="dmd-valence">+0.560</span>' in h and '<b id="dmd-emotion">happy</b>' in h
    assert "raw window: neutral 0.60 · model valence -0.200" in h
    assert "baseline: face running 21% · voice calibrated" in h
    assert ">happy</span><span class=\"pbar\" style=\"width:112px\"></span> 0.70" in h  # smoothed bars
    # votes against the shown label
    assert 'data-modality="L"' in h and "words ½ happy/neutral" in h and "face ✓ happy" in h and "voice ✗ angry" in h


def test_uncertain_votes_against_the_raw_label_and_no_signal_shows_nothing():
    h = readout_view.now_html(result(readout={"label": "uncertain", "probs": {"happy": 0.5, "neutral": 0.5},
                                              "valence": 0.4}), 3)
    assert 'class="emo uncertain"' in h and "voice ✗ angry" in h and "face ✗ happy" in h  # vs raw "neutral"
    h = readout_view.now_html(result(emotion="no signal", valence=math.nan, probs={},
                                     present={"language": False, "visual": False, "acoustic": False},
                                     readout={"label": "no signal", "probs": {}, "valence": None}), 3)
    assert '<span id="dmd-valence">–</span>' in h and '<b id="dmd-emotion">no signal</b>' in h
    assert "model valence –" in h and "votes" not in h and "pbar" not in h
    assert readout_view.now_html(None, 0, "idle") .count("idle") == 1


def test_baseline_text():
    assert readout_view.baseline_text(None) == ""
    assert readout_view.baseline_text({"acoustic": {"state": "running", "trust": 0.5, "calibration_failed": True}}) \
        == "baseline: voice running 50% (calibration found none)"


def test_session_calibrate_goes_to_the_pipeline():
    from realtime.baseline import BaselineConfig
    from realtime.pipeline import PipelineConfig
    from realtime.ui.session import Session, Settings

    s = Session(PipelineConfig(), Settings(checkpoint="unused"), key="calib")
    try:
        assert s.calibrate() == "start a stream first (camera or replay), then calibrate"
        calls = []
        s.pipeline = SimpleNamespace(calibrate=lambda: calls.append(1),
                                     config=SimpleNamespace(baseline=BaselineConfig(calibration_s=3.0)))
        assert s.calibrate() == "calibrating: keep a neutral face and speak normally for 3 s" and calls == [1]
        s.stop = lambda: None  # the stand-in pipeline has nothing to stop
    finally:
        s.close()


def test_the_transcript_says_when_the_current_words_are_heard_but_not_read():
    from realtime.ui.render import transcript_html

    def session(words, read):
        latest = SimpleNamespace(words=words, present={"language": read, "visual": False, "acoustic": True})
        return SimpleNamespace(view=SimpleNamespace(transcript=["Der", "Lappen"], latest=latest))

    unsure = transcript_html(session(["Der", "Lappen"], False))
    assert unsure.startswith('<div id="dmd-transcript">Der Lappen</div>') and 'id="dmd-words-unsure"' in unsure
    assert transcript_html(session(["Der", "Lappen"], True)) == '<div id="dmd-transcript">Der Lappen</div>'
    assert transcript_html(session([], False)) == '<div id="dmd-transcript">Der Lappen</div>'  # no words: nothing
