"""Live sources: the browser (frames and audio pushed in by the UI), the local webcam (OpenCV) and the local
microphone (sounddevice). Media time is seconds since the source started, on the one monotonic clock.

Each source's ``run(emit, stop)`` returns when ``stop`` is set. A device that cannot be opened raises
`SourceError` with the reason (no camera, PortAudio missing); `LocalDevicesSource` then goes on with whatever
device works and reports the other in ``problems``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from ..clock import monotonic
from ..packets import SAMPLE_RATE, AudioChunk, ClockTick, VideoFrame
from ..queues import BoundedQueue, Policy, consume
from . import SourceError



def to_mono_16k(sample_rate: int, data: np.ndarray) -> np.ndarray:
    """int16/int32/float audio, mono or (n, channels), at any rate -> float32 mono 16 kHz in [-1, 1]."""
    x = np.asarray(data)
    if x.dtype.kind == "i":
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    x = x.astype(np.float32)
    if x.ndim == 2:  # (n, channels), or (channels, n) for short channel-first input
        x = x.mean(axis=1) if x.shape[1] <= 8 else x.mean(axis=0)
    if sample_rate != SAMPLE_RATE and len(x):
        from math import gcd

        from scipy.signal import resample_poly  # polyphase: exact for 48k -> 16k, fast

        g = gcd(int(sample_rate), SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, int(sample_rate) // g).astype(np.float32)
    return np.clip(x, -1.0, 1.0)


class _Clocked:
    """Shared time keeping: media time = monotonic seconds since `start`; audio stays contiguous unless a gap."""

    def __init__(self):
        self.t0: float | None = None
        self._audio_next: float | None = None

    def now(self) -> tuple[float, float]:
        m = monotonic()
        if self.t0 is None:
            self.t0 = m
        return m - self.t0, m

    def audio_time(self, n: int) -> tuple[float, float]:
        t, m = self.now()
        start = max(0.0, t - n / SAMPLE_RATE)
        if self._audio_next is not None and start < self._audio_next + 0.25:
            start = self._audio_next  # delivery jitter or a burst, not a gap: keep the audio contiguous
        self._audio_next = start + n / SAMPLE_RATE
        return start, m


@dataclass(frozen=True)
class BrowserConfig:
    """Attributes:
    queue: packets buffered between the UI callbacks and the pipeline (oldest dropped and counted beyond it).
    tick_s: with nothing arriving for this long (s), the source sends a `ClockTick` saying that every frame and
        chunk stamped before now has been delivered, so a live window is scored without a camera frame (camera
        off, microphone only). 0.02 s: a window then waits at most that long past its end, at the cost of up to
        50 tiny packets a second.
    frame_gap_s: while frames keep coming (the newest less than this long ago, s), no tick is sent: a window
        that is due waits for the next frame (at most 0.1 s at 10 fps) and ends at it, so the score holds that
        frame and capture-to-score is the processing alone; ended by a tick, the window's newest frame is up to a
        frame interval old when it is scored. 0.3 s: three frame intervals of the page's webcam (10 frames/s), so
        an upload that comes late does not count as the camera going away.
    """

    queue: int = 256
    tick_s: float = 0.02
    frame_gap_s: float = 0.3


class BrowserSource(_Clocked):
    """Frames and audio that the UI pushes in (Gradio streaming callbacks run in their own threads)."""

    name = "browser"
    has_video = True
    has_audio = True

    def __init__(self, config: BrowserConfig = BrowserConfig()):
        super().__init__()
        self.config = config
        self.inbox = BoundedQueue(config.queue, Policy.DROP_OLDEST, "browser")
        # stamping and queueing under one lock: a tick stamped at t is queued after every packet stamped before t
        self._stamp = threading.Lock()
        self._last_frame = -math.inf  # monotonic time of the newest frame pushed in

    def push_frame(self, rgb: np.ndarray) -> None:
        """An (H, W, 3) uint8 RGB frame, as Gradio's streaming image delivers it."""
        if rgb is None:
            return
        rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
        with self._stamp:
            t, m = self.now()
            self._last_frame = m
            self.inbox.put(VideoFrame(t=t, t_mono=m, rgb=rgb))

    def push_audio(self, sample_rate: int, data: np.ndarray) -> None:
        """A chunk as Gradio's streaming microphone delivers it: (rate, int16 array)."""
        x = to_mono_16k(sample_rate, data)
        if not len(x):
            return
        with self._stamp:
            t, m = self.audio_time(len(x))
            self.inbox.put(AudioChunk(t=t, t_mono=m, samples=x))

    def _tick(self) -> None:
        with self._stamp:
            if self.t0 is None or len(self.inbox):  # before the first packet there is no clock yet
                return
            t, m = self.now()
            if m - self._last_frame >= self.config.frame_gap_s:  # frames flowing: the next one ends the window
                self.inbox.put(ClockTick(t))

    def run(self, emit, stop: threading.Event) -> float:
        end = 0.0
        for p in consume(self.inbox, stop, poll_s=self.config.tick_s, idle=True):
            if p is None:
                self._tick()
                continue
            emit(p)
            if not isinstance(p, ClockTick):
                end = max(end, getattr(p, "end", p.t))
        return end

    def close(self) -> None:
        self.inbox.close()


class WebcamSource(_Clocked):
    """The local camera through OpenCV, converted to RGB and downscaled to `width`."""

    name = "webcam"
    has_video, has_audio = True, False

    def __init__(self, index: int = 0, width: int = 640, clock: _Clocked | None = None):
        super().__init__()
        self.index, self.width = index, width
        self.clock = clock or self
        self.cap = None

    def prepare(self) -> None:
        import cv2

        cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            raise SourceError(f"no camera could be opened at index {self.index}")
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        self.cap = cap

    def run(self, emit, stop: threading.Event) -> float:
        import cv2

        if self.cap is None:
            self.prepare()
        end = 0.0
        try:
            while not stop.is_set():
                ok, bgr = self.cap.read()
                if not ok:
                    raise SourceError("the camera stopped delivering frames")
                t, m = self.clock.now()
                emit(VideoFrame(t=t, t_mono=m, rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
                end = t
        finally:
            self.cap.release()
        return end


class MicrophoneSource(_Clocked):
    """The local microphone through sounddevice (PortAudio), 16 kHz mono, 100 ms blocks."""

    name = "microphone"
    has_video, has_audio = False, True

    def __init__(self, device=None, block_s: float = 0.1, clock: _Clocked | None = None):
        super().__init__()
        self.device, self.block_s = device, block_s
        self.clock = clock or self
        self.inbox = BoundedQueue(100, Policy.DROP_OLDEST, "microphone")

    def prepare(self) -> None:
        try:
            import sounddevice as sd
        except OSError as e:  # "PortAudio library not found"
            raise SourceError(f"microphone unavailable: {e} (install libportaudio2)") from e
        try:
            sd.check_input_settings(device=self.device, channels=1, samplerate=SAMPLE_RATE)
        except Exception as e:
            raise SourceError(f"no usable microphone: {e}") from e
        self._sd = sd

    def run(self, emit, stop: threading.Event) -> float:
        if not hasattr(self, "_sd"):
            self.prepare()

        def callback(indata, frames, _time, _status):
            self.inbox.put(indata[:, 0].copy())

        end = 0.0
        with self._sd.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32", device=self.device,
                                  blocksize=int(self.block_s * SAMPLE_RATE), callback=callback):
            for x in consume(self.inbox, stop):
                t, m = self.clock.audio_time(len(x))
                emit(AudioChunk(t=t, t_mono=m, samples=x))
                end = t + len(x) / SAMPLE_RATE
        return end


class LocalDevicesSource(_Clocked):
    """Webcam and microphone together, on one clock; whichever device fails is reported and left out."""

    name = "local"

    def __init__(self, camera_index: int = 0, mic_device=None):
        super().__init__()
        self.children = [WebcamSource(camera_index, clock=self), MicrophoneSource(mic_device, clock=self)]
        self.problems: list[str] = []
        self.has_video = self.has_audio = False

    def prepare(self) -> None:
        ok = []
        for c in self.children:
            try:
                c.prepare()
                ok.append(c)
            except (SourceError, ImportError) as e:
                self.problems.append(str(e))
        self.children = ok
        self.has_video = any(c.has_video for c in ok)
        self.has_audio = any(c.has_audio for c in ok)
        if not ok:
            raise SourceError("; ".join(self.problems))

    def run(self, emit, stop: threading.Event) -> float:
        errors: list[str] = []

        def go(c):
            try:
                c.run(emit, stop)
            except Exception as e:
                errors.append(f"{c.name}: {e}")

        threads = [threading.Thread(target=go, args=(c,), daemon=True, name=f"source-{c.name}") for c in self.children]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise SourceError("; ".join(errors))
        return self.now()[0]
