"""What one stream has scored, as the page shows it: the playout buffer, the timeline rows, the transcript, the
edge averages and the rows of the end-of-stream summary. Push-style and thread-safe (the pipeline's scorer thread
adds results, the page's poll reads them); no Gradio, no files. Everything in it is capped, so a live session of
any length holds a bounded amount.
"""

from __future__ import annotations

import collections
import threading
import time

from . import plots
from .health import RateMeter


class Decimated:
    """At most ``cap`` rows spread over the whole stream: when full, every other row is dropped and from then on
    only every ``stride``-th row is kept (the end-of-stream summary of an hour-long session stays a few thousand
    points, evenly spaced in time)."""

    def __init__(self, cap: int):
        self.cap = max(2, int(cap))
        self.rows: list = []
        self.stride = 1
        self.seen = 0

    def add(self, row) -> None:
        if self.seen % self.stride == 0:
            self.rows.append(row)
            if len(self.rows) > self.cap:
                self.rows = self.rows[::2]
                self.stride *= 2
        self.seen += 1

    def __len__(self) -> int:
        return len(self.rows)


class StreamView:
    """One stream's results for the page (a new stream gets a new view, so a late result of an old stream can
    only reach the old view)."""

    TIMELINE_S = 60.0
    """Media seconds the timeline keeps (and draws)."""
    MAX_PLAYOUT_S = 3.0
    """The display never lags the newest result by more than this (s): beyond it the playout skips ahead."""
    LATE_S = 0.3
    """A result this far behind its slot re-anchors the display clock (less than that is poll granularity)."""
    MAX_PENDING = 400
    """Results waiting for display; beyond it (nobody is polling: a hidden tab) the oldest are shown unpolled."""
    MAX_TRANSCRIPT_WORDS = 5000
    """Transcript words kept; the oldest TRANSCRIPT_TRIM are dropped at once beyond it (the page shows 120)."""
    TRANSCRIPT_TRIM = 1000
    SUMMARY_ROWS = 4000
    """Rows kept for the summary PNG however long the stream (`Decimated`)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.rows: collections.deque = collections.deque()
        self.transcript: list[str] = []
        self.latest = None
        self.word_delay_ms: float | None = None  # speech to score of the newest displayed window with new words
        self.count = 0  # results displayed
        self.received = 0  # results scored
        self.pending: collections.deque = collections.deque()
        self._offset: float | None = None
        self.avg = plots.EdgeAverager()  # what the page shows
        self.avg_all = plots.EdgeAverager()  # every result (for the summary)
        self.summary_rows = Decimated(self.SUMMARY_ROWS)
        self.score_rate = RateMeter()  # results scored per second
        self.ui_rate = RateMeter()  # page updates per second (ticked by `render`)

    def add(self, r) -> None:
        """A scored result (from the pipeline's scorer thread)."""
        with self._lock:
            self.received += 1
            self.pending.append(r)
            if len(self.pending) > self.MAX_PENDING:  # nobody is polling (hidden tab): keep the state current
                self._show(self.pending.popleft())
            self.score_rate.tick()
            self.summary_rows.add(plots.series_row(r))
            self.avg_all.add(r.homo_edges, r.hetero_edges)

    def _show(self, r) -> None:
        """Make ``r`` the displayed result (lock held)."""
        self.latest = r
        self.word_delay_ms = r.latency_ms.get("word_delay", self.word_delay_ms)
        self.count += 1
        self.rows.append(plots.series_row(r))
        while self.rows and self.rows[-1][0] - self.rows[0][0] > self.TIMELINE_S + 1.0:
            self.rows.popleft()
        self.avg.add(r.homo_edges, r.hetero_edges)
        self.transcript.extend(r.new_words)  # the words committed since the previous window: appended, never matched
        if len(self.transcript) > self.MAX_TRANSCRIPT_WORDS:
            del self.transcript[: self.TRANSCRIPT_TRIM]

    def advance(self, now: float | None = None, fast: bool = False) -> int:
        """Move due results from the playout buffer to the display; returns how many were shown.

        Why a playout buffer: in real-time replay every window waits for all stages (deterministic scores), and the
        Whisper stage decodes about a second of audio at a time, so scores reach the UI in bursts of 3-4 once a
        second. Drawn as they arrive, a 5 Hz poll would show about one update a second. Instead the display clock
        ``D = now - offset`` releases each result at its own media time: a result that arrives after its slot
        (``t < D - LATE_S``) pulls the clock back to it, so a burst is played out at real-time pace and the delay
        settles at about one burst period. The delay is capped at MAX_PLAYOUT_S; ``fast`` shows results at once.
        """
        now = time.monotonic() if now is None else now
        shown = 0
        with self._lock:
            if not self.pending:
                return 0
            if fast:
                while self.pending:
                    self._show(self.pending.popleft())
                    shown += 1
                self._offset = None
                return shown
            first, last = self.pending[0].t, self.pending[-1].t
            if self._offset is None or first < now - self._offset - self.LATE_S:
                self._offset = now - first  # late (or the first result): show it now, pace the rest
            if last - (now - self._offset) > self.MAX_PLAYOUT_S:
                self._offset = now - (last - self.MAX_PLAYOUT_S)  # too far behind: skip ahead
            horizon = now - self._offset + 1e-6
            while self.pending and self.pending[0].t <= horizon:
                self._show(self.pending.popleft())
                shown += 1
        return shown

    def timeline_rows(self) -> list:
        with self._lock:
            return list(self.rows)

    def summary(self) -> tuple[list, plots.EdgeAverager]:
        """The rows and edge averages of the whole stream, for the summary PNG."""
        with self._lock:
            return list(self.summary_rows.rows), self.avg_all
