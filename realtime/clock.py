"""One clock for the whole pipeline, and the one place that paces media in real time.

Packets carry two times: ``t`` (media time, seconds from the start of the stream: what the window aligns on) and
``t_mono`` (``time.monotonic()`` at capture: what latency is measured against). Nothing else tells time.
"""

from __future__ import annotations

import threading
import time

monotonic = time.monotonic


class Pacer:
    """Releases media time at real-time pace, or at once (fast replay); can pause, and switch between the two while
    a stream plays (the page's Pause button and "fast" box).

    ``wait_until(t)`` blocks until ``t`` seconds of media time have elapsed since the anchor: `start` anchors media
    time 0 now; after a pause or a switch back to real time the next packet re-anchors the clock (so the stream
    resumes where it was instead of rushing to catch up). A stop event cuts any wait short, so stopping never
    waits for the media.

    Args:
        realtime: real-time pace (True) or fast (False) to begin with.
        stop: the stop event `wait_until` watches when it is given none.
    """

    PAUSE_POLL_S = 0.05

    def __init__(self, realtime: bool = True, stop: threading.Event | None = None):
        self.fast = not realtime
        self.stop = stop if stop is not None else threading.Event()
        self.paused = threading.Event()
        self._anchor: tuple[float, float] | None = None  # (monotonic time, media time) released together

    @property
    def realtime(self) -> bool:
        return not self.fast

    def start(self, t_media: float = 0.0) -> None:
        """Media time ``t_media`` is due now."""
        self._anchor = (monotonic(), t_media)

    def set_fast(self, fast: bool) -> None:
        self.fast = fast
        self._anchor = None  # re-anchor real-time pacing at the next packet

    def set_paused(self, paused: bool) -> None:
        if paused:
            self.paused.set()
        else:
            self._anchor = None
            self.paused.clear()

    def wait_until(self, t_media: float, stop: threading.Event | None = None) -> bool:
        """Wait until ``t_media`` is due (and not paused); False when stopped while waiting."""
        stop = stop if stop is not None else self.stop
        while self.paused.is_set():
            if stop.wait(self.PAUSE_POLL_S):
                return False
        if self.fast:
            return not stop.is_set()
        now = monotonic()
        if self._anchor is None:
            self._anchor = (now, t_media)
        delay = self._anchor[0] + (t_media - self._anchor[1]) - now
        if delay > 0:
            return not stop.wait(delay)
        return not stop.is_set()
