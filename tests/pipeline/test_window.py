"""The sliding window aligns by media time, honours availability times, and gates emission on watermarks."""

import math

import numpy as np
import pytest

from dmd_model.feature_spec import Word
from realtime.packets import FeatureEvent, Watermark
from realtime.window import F0_COLUMN, SlidingWindow, WindowConfig

DIMS = (384, 52, 25)


def visual(t, value=1.0, face=True, t_avail=None):
    return FeatureEvent("visual", np.array([t]), np.full((1, 52), value, np.float32), t if t_avail is None else t_avail,
                        0.0, present=np.array([face]))


def acoustic(ts, voiced=True, t_avail=None):
    x = np.zeros((len(ts), 25), np.float32)
    x[:, F0_COLUMN] = 30.0 if voiced else 0.0
    return FeatureEvent("acoustic", np.asarray(ts, float), x, max(ts) if t_avail is None else t_avail, 0.0)


def make(wait_for_all=True, **kw):
    return SlidingWindow(WindowConfig(window_s=1.0, hop_s=0.5, text_window_s=2.0, history_s=3.0,
                                      wait_for_all=wait_for_all, **kw), (4, 3, 5), DIMS, ("face", "acoustic"),
                         driver="face")


def test_waits_for_every_stage_then_emits_each_hop():
    w = make()
    assert w.push(visual(0.2)) == []
    assert w.push(Watermark("face", 1.0)) == []  # acoustic and source have not reached 0.5
    assert w.push(Watermark("source", 1.0)) == []
    out = w.push(Watermark("acoustic", 1.2))
    assert [s.t for s in out] == [0.5, 1.0]
    assert out[0].present == (False, True, False)


def feed(w, items):
    out = []
    for it in items:
        out += w.push(it)
    return out


def test_alignment_is_by_media_time_not_arrival_order():
    a, b = make(), make()
    events = [visual(0.9, 2.0), visual(0.1, 1.0), visual(0.6, 3.0)]
    marks = [Watermark("source", 1.0), Watermark("acoustic", 1.0), Watermark("face", 1.0)]
    sa = feed(a, events + marks)
    sb = feed(b, list(reversed(events)) + marks)
    assert [s.t for s in sa] == [s.t for s in sb] == [0.5, 1.0]
    np.testing.assert_array_equal(sa[1].visual, sb[1].visual)
    assert sa[1].visual[:, 0].tolist() == [1.0, 3.0, 2.0]  # rows ordered by their media time


def test_outputs_not_yet_available_are_left_out():
    w = make()
    snaps = feed(w, [visual(0.4), acoustic([0.1, 0.2, 0.3], t_avail=1.3)]  # produced late (block-wise extractor)
                 + [Watermark(s, 1.5) for s in ("source", "face", "acoustic")])
    by_t = {s.t: s for s in snaps}
    assert sorted(by_t) == [0.5, 1.0, 1.5]
    assert by_t[0.5].acoustic.shape[0] == 0  # at t=0.5 a live system did not have those frames yet
    assert by_t[1.0].acoustic.shape[0] == 0
    assert by_t[1.5].acoustic.shape[0] == 0  # and at 1.5 they have left the 1 s window (0.5, 1.5]
    assert by_t[0.5].visual.shape[0] == 1


def test_presence_masks_and_fitting():
    w = make()
    for i in range(10):
        w.push(visual(0.05 + 0.1 * i, face=i % 2 == 0))
    w.push(acoustic(np.arange(0.01, 1.0, 0.01), voiced=True))
    w.push(FeatureEvent("words", np.array([0.5]), None, 0.6, 0.0, words=[Word("hi", 0.4, 0.6)]))
    for s in ("source", "face", "acoustic"):
        w.push(Watermark(s, 1.0))
    snap = w.snapshot(1.0)
    assert snap.present == (True, True, True)
    assert snap.face_fraction == pytest.approx(0.5)
    assert snap.visual.shape == (3, 52)  # 5 face frames averaged into 3
    assert snap.acoustic.shape == (5, 25)  # 99 frames averaged into 5
    assert [x.text for x in snap.words] == ["hi"]


def test_silence_marks_acoustic_absent():
    w = make()
    w.push(acoustic(np.arange(0.01, 1.0, 0.01), voiced=False))
    snap = w.snapshot(1.0)
    assert snap.acoustic.shape[0] == 5 and snap.present[2] is False and snap.voiced_fraction == 0.0


def test_live_mode_is_driven_by_the_face_stage():
    w = make(wait_for_all=False)
    w.push(Watermark("source", 2.0))
    out = w.push(Watermark("face", 1.0))  # acoustic lags; live does not wait for it
    assert [s.t for s in out] == [1.0]  # one window, the newest: no catching up on the 0.5 s one


def test_live_windows_end_at_the_newest_frame_once_a_hop_is_due():
    """Hop 0.5 s, faces at 0.3, 0.6, 0.9, 1.2, 1.5 s: each window ends at the first frame at or after the next hop
    (0.6, 1.2, 1.5), holds that frame, and the hop after it is the next grid point (1.0, 1.5, 2.0)."""
    w = make(wait_for_all=False)
    w.push(Watermark("source", 5.0))
    ends, newest = [], []
    for k in range(1, 6):
        t = round(0.3 * k, 6)  # captured (monotonic clock) at 100 + t
        w.push(FeatureEvent("visual", np.array([t]), np.ones((1, 52), np.float32), t, 100.0 + t,
                            present=np.array([True])))
        for s in w.push(Watermark("face", t)):
            ends.append(s.t)
            newest.append(round(s.t_mono - 100.0, 6))
    assert ends == [0.6, 1.2, 1.5] and newest == [0.6, 1.2, 1.5] and w.next_end == 2.0


def test_a_finished_or_failed_stage_is_not_waited_for():
    w = make()
    w.push(Watermark("source", 1.0))
    w.push(Watermark("face", 1.0))
    out = w.push(Watermark("acoustic", math.inf))
    assert [s.t for s in out] == [0.5, 1.0]


def test_memory_is_bounded_by_history():
    w = make()
    for i in range(400):
        t = 0.05 * i
        w.push(visual(t))
        w.push(Watermark("source", t))
        w.push(Watermark("face", t))
        w.push(Watermark("acoustic", t))
    assert len(w.streams["visual"].events) <= 3.0 / 0.05 + 12
    assert w.emitted == int(399 * 0.05 / 0.5)


def words_event(texts, start, t_avail):
    ws = [Word(x, start + 0.2 * k, start + 0.2 * k + 0.1) for k, x in enumerate(texts)]
    return FeatureEvent("words", np.array([(w.start + w.end) / 2 for w in ws]), None, t_avail, 0.0, words=ws)


def test_each_committed_word_is_new_in_exactly_one_window():
    """"no, no, no" committed in three pieces: every window lists the words of its text window (repeats and all),
    and each committed word is in one window's ``new_words``, including one that arrives after its window was
    emitted (live: it goes with the next window)."""
    w = make(wait_for_all=False)
    out = feed(w, [words_event(["no"], 0.1, 0.4), Watermark("source", 0.5), Watermark("face", 0.5),
                   words_event(["no"], 0.5, 0.9), Watermark("source", 1.0), Watermark("face", 1.0),
                   words_event(["no", "way"], 0.9, 1.0),  # available at 1.0, arrives after the 1.0 window
                   Watermark("source", 1.5), Watermark("face", 1.5)])
    assert [s.t for s in out] == [0.5, 1.0, 1.5]
    assert [[x.text for x in s.new_words] for s in out] == [["no"], ["no"], ["no", "way"]]
    assert [x.text for x in out[2].words] == ["no", "no", "no", "way"]


def test_face_rows_come_from_the_last_visual_window_s_only():
    # window (0, 2]; face span 0.5 s: only the faces of (1.5, 2.0] are scored, the voice over the whole window
    w = SlidingWindow(WindowConfig(window_s=2.0, hop_s=0.5, visual_window_s=0.5, text_window_s=2.0, history_s=3.0),
                      (4, 8, 400), DIMS, ("face", "acoustic"), driver="face")
    for i in range(20):  # 10 Hz faces, value = their index, every third without a face
        w.push(visual(0.05 + 0.1 * i, float(i), face=i % 3 != 0))
    w.push(acoustic(np.arange(0.01, 2.0, 0.01)))
    for s in ("source", "face", "acoustic"):
        w.push(Watermark(s, 2.0))
    snap = w.snapshot(2.0)
    assert snap.visual[:, 0].tolist() == [16.0, 17.0, 19.0]  # 15 and 18 had no face; 0 to 14 are older than 0.5 s
    assert snap.face_fraction == pytest.approx(3 / 5)
    assert snap.acoustic.shape[0] == 199


def test_face_span_never_exceeds_the_window():
    assert WindowConfig(window_s=0.5, visual_window_s=1.0).face_span_s == 0.5
    assert WindowConfig(window_s=4.0).face_span_s == 1.0
    with pytest.raises(ValueError, match="visual_window_s"):
        WindowConfig(visual_window_s=float("nan"))
