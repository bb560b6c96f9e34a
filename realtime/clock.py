"""One clock for the whole pipeline.

Packets carry two times: ``t`` (media time, seconds from the start of the stream: what the window aligns on) and
``t_mono`` (``time.monotonic()`` at capture: what latency is measured against). Nothing else tells time.
"""

from __future__ import annotations

import threading
import time

monotonic = time.monotonic


class Pacer:
    """Releases media time at real-time pace (or not at all, for fast replay).

    ``wait_until(t)`` blocks until ``t`` seconds of media time have elapsed since ``start()``, or returns at once
    when ``realtime`` is False. A stop event cuts any wait short, so stopping never waits for the media.
    """

    def __init__(self, realtime: bool, stop: threading.Event):
        self.realtime = realtime
        self.stop = stop
        self.t0 = monotonic()

    def start(self) -> None:
        self.t0 = monotonic()

    def wait_until(self, t_media: float) -> bool:
        """False when stopped while waiting."""
        if not self.realtime:
            return not self.stop.is_set()
        delay = self.t0 + t_media - monotonic()
        if delay > 0:
            return not self.stop.wait(delay)
        return not self.stop.is_set()
