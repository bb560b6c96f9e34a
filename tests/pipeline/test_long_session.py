"""A 60-minute live session, simulated push by push: everything that used to grow with the session's length (the
transcript state, the page's rows, the window's streams) stays bounded, and nothing committed is lost."""

import numpy as np
import pytest

from dmd_model.feature_spec import Word
from realtime.features.transcript import LocalAgreement
from realtime.packets import FeatureEvent, Watermark
from realtime.ui.stream_view import StreamView
from realtime.window import SlidingWindow, WindowConfig

HOUR_S = 3600.0
HOP_S = 0.25


def test_an_hour_of_speech_keeps_local_agreement_bounded():
    """Whisper hypotheses every second for an hour (3 words a second, each seen twice before it commits): the
    committed state stays at KEEP_WORDS, every word is returned exactly once, and the seam check still works."""
    la = LocalAgreement()
    returned, longest = [], 0
    for sec in range(int(HOUR_S)):
        hyp = [Word(f"w{k}", k / 3, k / 3 + 0.3) for k in range(max(0, 3 * sec - 6), 3 * sec + 3)]
        returned += la.insert(hyp)
        longest = max(longest, len(la.committed))
    returned += la.flush()
    assert longest == LocalAgreement.KEEP_WORDS
    n = 3 * int(HOUR_S)  # the last hypothesis ends with word n - 1
    assert [w.text for w in returned] == [f"w{k}" for k in range(n)]
    assert len(la.committed) == LocalAgreement.KEEP_WORDS and la.committed[-1].text == f"w{n - 1}"


class _Result:
    def __init__(self, t):
        u = 1 / 6
        self.t, self.valence = t, 0.1
        self.heads = {unit: {m: {"valence": 0.0} for m in "LVA"} for unit in ("homo", "hetero")}
        self.homo_edges = self.hetero_edges = [[0, u, u], [u, 0, u], [u, u, 0]]
        self.new_words = ["word"] if int(t * 4) % 2 == 0 else []
        self.latency_ms = {"word_delay": 1500.0} if self.new_words else {}


def test_an_hour_of_results_keeps_the_page_state_bounded():
    """14,400 windows (an hour at a 250 ms hop), the page polling 5 times a second: the timeline keeps its 60 s,
    the summary rows their cap (spread over the whole hour), the transcript its cap, the playout buffer its cap."""
    v = StreamView()
    sizes = {"rows": 0, "summary": 0, "transcript": 0, "pending": 0}
    n = int(HOUR_S / HOP_S)
    for k in range(1, n + 1):
        v.add(_Result(k * HOP_S))
        if k % 4 == 0:  # the page polls once a second here: four results a poll
            v.advance(fast=True)
        sizes = {"rows": max(sizes["rows"], len(v.rows)), "summary": max(sizes["summary"], len(v.summary_rows)),
                 "transcript": max(sizes["transcript"], len(v.transcript)),
                 "pending": max(sizes["pending"], len(v.pending))}
    v.advance(fast=True)
    assert v.received == v.count == n
    assert sizes["rows"] == int(v.TIMELINE_S / HOP_S) + 5  # 61 s of rows and the one being added
    assert sizes["summary"] == v.SUMMARY_ROWS  # full: every other row goes, one in two from then on
    assert sizes["transcript"] == v.MAX_TRANSCRIPT_WORDS and sizes["pending"] == 3  # 3 wait between polls
    rows, _ = v.summary()
    assert rows[0][0] == HOP_S and rows[-1][0] > HOUR_S - 4 * HOP_S  # the summary still spans the whole hour
    gaps = np.diff([t for t, _ in rows])
    assert gaps.min() == gaps.max()  # evenly spaced


@pytest.mark.slow  # 14,400 windows: about 30 s on an idle core
def test_an_hour_of_live_features_keeps_the_window_bounded():
    """Face frames at 10 Hz, acoustic rows at 100 Hz (in 0.1 s events) and a word every 2 s for an hour, live
    (driven by the face stream): the window's buffers never hold more than its history, and each word is new in
    exactly one window."""
    w = SlidingWindow(WindowConfig(window_s=4.0, hop_s=HOP_S, wait_for_all=False, history_s=12.0), (8, 8, 8),
                      (384, 4, 25), ("face", "acoustic", "transcript"), driver="face")
    biggest, windows, new_words = 0, 0, 0
    for k in range(1, int(HOUR_S * 10) + 1):
        t = k / 10
        items = [FeatureEvent("visual", np.array([t]), np.ones((1, 4), np.float32), t, 0.0, present=np.array([True])),
                 FeatureEvent("acoustic", t - 0.1 + np.arange(1, 11) / 100, np.ones((10, 25), np.float32), t, 0.0)]
        if k % 20 == 0:
            items.append(FeatureEvent("words", np.array([t - 0.5]), None, t, 0.0, words=[Word("w", t - 0.6, t - 0.4)]))
        for it in items + [Watermark("source", t), Watermark("face", t)]:
            for snap in w.push(it):
                windows += 1
                new_words += len(snap.new_words)
        biggest = max(biggest, *(len(s.events) for s in w.streams.values()), len(w._unreported))
    assert windows == int(HOUR_S / HOP_S)
    assert new_words == int(HOUR_S * 10) // 20
    assert biggest <= 12.0 * 10 + 10  # the 12 s history of face frames, and the hop's frames before a prune
