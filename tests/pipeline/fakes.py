"""Light stand-ins for sources, stage cores and the text encoder, so pipeline tests run without loading models."""

from __future__ import annotations

import math
import threading
import time

import numpy as np

from realtime.clock import Pacer, monotonic
from realtime.features.face import VISUAL_DIM
from realtime.packets import AudioChunk, FeatureEvent, VideoFrame


class FakeSource:
    """`duration` seconds of 10 fps black frames and 0.1 s audio chunks, optionally paced in real time."""

    def __init__(self, duration=3.0, video=True, audio=True, realtime=False, fail_at=None):
        self.duration, self.has_video, self.has_audio = duration, video, audio
        self.realtime, self.fail_at = realtime, fail_at

    def run(self, emit, stop: threading.Event) -> float:
        pacer = Pacer(self.realtime, stop)
        pacer.start()
        t = 0.0
        while t < self.duration - 1e-9 and not stop.is_set():
            if self.fail_at is not None and t >= self.fail_at:
                raise OSError("camera unplugged")
            if not pacer.wait_until(t + 0.1):
                break
            if self.has_video:
                emit(VideoFrame(t=round(t, 3), t_mono=monotonic(), rgb=np.zeros((4, 4, 3), np.uint8)))
            if self.has_audio:
                emit(AudioChunk(t=round(t, 3), t_mono=monotonic(), samples=np.zeros(1600, np.float32)))
            t += 0.1
        return min(t, self.duration)


class FakeCore:
    """Emits one row per packet: visual rows with a face, acoustic rows marked voiced, words every second."""

    def __init__(self, name, fail_after=None, stall_after=None, stop=None):
        self.name = name
        self.watermark = -math.inf
        self.fail_after, self.stall_after = fail_after, stall_after
        self.n = 0
        self.stop = stop or threading.Event()

    def start(self):
        pass

    def push(self, p):
        self.n += 1
        if self.fail_after is not None and self.n > self.fail_after:
            raise RuntimeError(f"{self.name} extractor crashed")
        if self.stall_after is not None and self.n > self.stall_after:
            self.stop.wait(3600)  # hangs until the test releases it
        end = getattr(p, "end", p.t)
        self.watermark = end
        t = np.array([p.t + 0.05])
        if self.name == "face":
            return [FeatureEvent("visual", t, np.full((1, VISUAL_DIM), 0.5, np.float32), end, p.t_mono, present=np.array([True]))]
        if self.name == "acoustic":
            x = np.ones((1, 25), np.float32)
            return [FeatureEvent("acoustic", t, x, end, p.t_mono)]
        if self.n % 10 == 0:
            from dmd_model.feature_spec import Word

            return [FeatureEvent("words", t, None, end, p.t_mono, words=[Word(f"w{self.n}", p.t, p.t + 0.1)])]
        return []

    def flush(self):
        self.watermark = math.inf
        return []

    def reset(self):
        pass


class FakeText:
    """MiniLM stand-in: one deterministic 384-d row per word."""

    model = object()

    def encode(self, words):
        from types import SimpleNamespace

        x = np.stack([np.full(384, (hash(w.text) % 7) / 7, np.float32) for w in words])
        return SimpleNamespace(x=x)


def fake_scorer(checkpoint):
    from realtime.scorer import Scorer, ScorerConfig

    return Scorer(ScorerConfig(checkpoint=str(checkpoint), device="cpu"), live_spec=None).start()


def wait_until(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False
