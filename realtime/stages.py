"""Extraction stages: push-style adapters from packets to `FeatureEvent`s, and the thread that runs one.

The adapters (`FaceStage`, `AcousticStage`, `TranscriptStage`) are thread-free: ``push(packet) -> [events]``,
``flush() -> [events]``, ``reset()``, and a ``watermark`` (media time up to which all input was consumed).
`StageThread` is the only place with a thread: it feeds an adapter from a bounded queue, reports status and
latency, and survives the adapter's failure (it reports it and keeps draining, so producers never block).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from .clock import monotonic
from .packets import AudioChunk, ClockTick, EndOfStream, FeatureEvent, VideoFrame, Watermark
from .queues import BoundedQueue, consume

log = logging.getLogger(__name__)


class StageCore(Protocol):
    name: str
    watermark: float

    def start(self) -> None: ...
    def push(self, packet) -> list[FeatureEvent]: ...
    def flush(self) -> list[FeatureEvent]: ...
    def reset(self) -> None: ...


class FaceStage:
    """Video frames -> visual events (the visual vector, face flag, landmarks for the overlay)."""

    name = "face"

    def __init__(self, processor):
        self.processor = processor  # realtime.features.face.FaceProcessor
        self.watermark = -math.inf

    def start(self) -> None:
        self.processor.start()

    def advance(self, t: float) -> None:
        """No frame before media time ``t`` will come (a live source's `ClockTick`): the watermark moves there."""
        self.watermark = max(self.watermark, t)

    def push(self, frame: VideoFrame) -> list[FeatureEvent]:
        out = self.processor.push(frame.t, frame.rgb)
        self.watermark = max(self.watermark, frame.t)
        if not out:
            return []
        f = out[0]
        return [FeatureEvent("visual", np.array([f.t]), f.vector[None, :], t_avail=frame.t, t_mono=frame.t_mono,
                             present=np.array([f.present]), landmarks=f.landmarks)]

    def flush(self) -> list[FeatureEvent]:
        self.watermark = math.inf
        return []

    def reset(self) -> None:
        self.processor.reset()
        self.watermark = -math.inf

    def close(self) -> None:
        # Close the landmarker in the thread that ran it: left to the garbage collector, MediaPipe's close runs in
        # whatever thread collects it and can deadlock there (seen: inside the scorer thread).
        self.processor.close()


class _AudioStage:
    """Shared audio handling: contiguous chunks go straight to the processor; a gap (a live drop) restarts it at the
    new chunk's time, so output times stay true. Subclasses say how to push, flush and wrap the output."""

    name = "audio"

    def __init__(self, processor):
        self.processor = processor
        self.watermark = -math.inf
        self._expected: float | None = None
        self._t_mono = 0.0

    def start(self) -> None:
        self.processor.start()

    def _restart(self, t: float) -> list[FeatureEvent]:
        self.processor.reset(t)
        return []

    def push(self, chunk: AudioChunk) -> list[FeatureEvent]:
        pending = []
        if self._expected is None or abs(chunk.t - self._expected) > 0.02:
            pending = self._restart(chunk.t)
        self._expected = chunk.end
        self._t_mono = chunk.t_mono
        out = self.processor.push(chunk.samples)
        self.watermark = chunk.end
        return pending + self._event(out, chunk.end)

    def _event(self, out, t_avail: float) -> list[FeatureEvent]:
        raise NotImplementedError

    def flush(self) -> list[FeatureEvent]:
        out = self._event(self.processor.flush(), self.watermark) if self._expected is not None else []
        self.watermark = math.inf
        return out

    def reset(self) -> None:
        self._expected = None
        self.watermark = -math.inf


class AcousticStage(_AudioStage):
    """Audio chunks -> acoustic events (25 eGeMAPS LLDs per 10 ms)."""

    name = "acoustic"

    def _event(self, frames, t_avail: float) -> list[FeatureEvent]:
        if not len(frames):
            return []
        return [FeatureEvent("acoustic", frames.t, frames.x, t_avail=t_avail, t_mono=self._t_mono)]


class TranscriptStage(_AudioStage):
    """Audio chunks -> committed words (faster-whisper + VAD + LocalAgreement)."""

    name = "transcript"

    def _restart(self, t: float) -> list[FeatureEvent]:
        # words pending before the gap are committed, not lost
        pending = self._event(self.processor.flush(), self._expected) if self._expected is not None else []
        self.processor.reset(t)
        return pending

    def _event(self, words, t_avail: float) -> list[FeatureEvent]:
        if not words:
            return []
        t = np.array([(w.start + w.end) / 2 for w in words])
        return [FeatureEvent("words", t, None, t_avail=t_avail, t_mono=self._t_mono, words=list(words))]


@dataclass
class StageStats:
    """Counters a stage exposes to the UI (all times in ms)."""

    status: str = "idle"
    packets: int = 0
    events: int = 0
    last_ms: float = 0.0
    last_wait_ms: float = 0.0  # capture (the packet's t_mono) to this stage starting on it: the hand-offs before it
    mean_ms: float = 0.0
    busy_s: float = 0.0
    media_s: float = 0.0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        load = self.busy_s / self.media_s if self.media_s > 0 else 0.0
        return {"status": self.status, "packets": self.packets, "events": self.events,
                "last_ms": round(self.last_ms, 3), "mean_ms": round(self.mean_ms, 3),
                "compute_per_media_s": round(load, 4)}


def lower_thread_priority(nice: int) -> int | None:
    """Raise the calling thread's nice value by ``nice`` (Linux schedules threads one by one; threads the caller
    creates afterwards, such as a native library's worker pool, inherit it). Returns the new value, or None where
    it cannot be done (another OS, or refused); never raises."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return None
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError as e:
        log.warning("could not lower the priority of thread %s: %s", threading.current_thread().name, e)
        return None


class StageThread:
    """Runs one `StageCore` in a thread, fed by `inbox`, sending events and watermarks to `emit`.

    Failure policy: if the core raises (at start or on a packet), the stage reports ``failed: <reason>``, sends an
    infinite watermark (so the window stops waiting for it and scores the other modalities with this one
    masked), and keeps draining its inbox so that producers never block.

    ``nice``: the thread's nice value is raised by this much before the core starts (so the model threads it
    creates inherit it): a stage off the latency path yields the cores to those on it (`lower_thread_priority`).
    """

    def __init__(self, core: StageCore, inbox: BoundedQueue, emit: Callable[[object], None], stop: threading.Event,
                 coalesce: bool = False, nice: int = 0):
        self.core = core
        self.coalesce = coalesce
        self.nice = int(nice)
        self.name = core.name
        self.inbox = inbox
        self.emit = emit
        self.stop_event = stop
        self.stats = StageStats()
        self._thread = threading.Thread(target=self._run, name=f"stage-{self.name}", daemon=True)
        self._prev_t: float | None = None

    def start(self) -> None:
        self._thread.start()

    def _fail(self, reason: str) -> None:
        self.stats.status = f"failed: {reason}"
        log.error("stage %s failed: %s", self.name, reason)
        self.emit(Watermark(self.name, math.inf))

    def _run(self) -> None:
        self.stats.status = "starting"
        lower_thread_priority(self.nice)
        failed = not self._call(self.core.start)  # a missing model, a broken native library...
        if not failed:
            self.stats.status = "running"
        for packet in consume(self.inbox, self.stop_event):
            if isinstance(packet, EndOfStream):
                if not failed and self._call(self._flush):
                    self.stats.status = "finished"
                self.emit(Watermark(self.name, math.inf))
                break
            if isinstance(packet, ClockTick):  # not a packet of work: no latency or load is counted for it
                if not failed and hasattr(self.core, "advance"):
                    self.core.advance(packet.t)
                    self.emit(Watermark(self.name, self.core.watermark))
                continue
            if not failed:  # after a failure the inbox is drained, so producers never block
                failed = not self._call(self._push, self._with_backlog(packet) if self.coalesce else packet)
        if self.stats.status in ("running", "starting"):
            self.stats.status = "stopped"
        close = getattr(self.core, "close", None)
        if close is not None:
            try:
                close()
            except Exception as e:  # closing must never take the thread down with it
                log.warning("stage %s: close failed: %s", self.name, e)

    def _call(self, fn, *args) -> bool:
        """Run ``fn``; a raise reports the stage failed (`_fail`) and returns False."""
        try:
            fn(*args)
        except Exception as e:
            self._fail(f"{type(e).__name__}: {e}")
            return False
        return True

    def _with_backlog(self, packet):
        """``packet`` with the audio waiting behind it that continues it, as one chunk (``coalesce``): a stage that
        fell behind then catches up in one call instead of one call per chunk (Whisper transcribes its whole
        buffer on each call, so per-chunk calls that each take longer than their chunk never catch up)."""
        if not isinstance(packet, AudioChunk):
            return packet
        last = packet

        def continues(p) -> bool:
            nonlocal last
            if isinstance(p, AudioChunk) and p.follows(last):
                last = p
                return True
            return False

        tail = [packet, *self.inbox.take_while(continues)]
        if len(tail) == 1:
            return packet
        return AudioChunk(t=packet.t, t_mono=tail[-1].t_mono, samples=np.concatenate([p.samples for p in tail]))

    def _flush(self) -> None:
        for ev in self.core.flush():
            self.emit(ev)

    def _push(self, packet) -> None:
        if getattr(packet, "t_mono", None) is not None:
            self.stats.last_wait_ms = (monotonic() - packet.t_mono) * 1e3
        t0 = time.perf_counter()
        events = self.core.push(packet)
        self._account(packet, time.perf_counter() - t0, len(events))
        for ev in events:
            self.emit(ev)
        self.emit(Watermark(self.name, self.core.watermark))

    def _account(self, packet, dt: float, n_events: int) -> None:
        s = self.stats
        s.packets += 1
        s.events += n_events
        s.last_ms = dt * 1e3
        s.mean_ms = s.last_ms if s.packets == 1 else 0.95 * s.mean_ms + 0.05 * s.last_ms
        s.busy_s += dt
        t = packet.t
        end = packet.end if isinstance(packet, AudioChunk) else t
        if self._prev_t is not None:
            s.media_s += max(0.0, end - self._prev_t)
        self._prev_t = end

    def join(self, timeout: float) -> bool:
        """True when the thread has ended (or never started: a stop can come during start-up)."""
        if self._thread.ident is None:
            return True
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

