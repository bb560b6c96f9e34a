"""The page's tap on a source: it keeps the latest frames (downscaled) for display and counts the frame and audio
rates, and draws the face landmarks on a frame. Pacing, pause and the real-time/fast switch are the source's
(`realtime.clock.Pacer`); this only watches what passes.
"""

from __future__ import annotations

import collections
import threading

import numpy as np

from ..packets import AudioChunk, VideoFrame
from .health import RateMeter


class FrameTap:
    """Wraps a source (``run(emit, stop)``, ``has_video``, ``has_audio``, optional ``prepare``/``close``/
    ``problems``) and passes every packet on unchanged."""

    def __init__(self, inner, keep_frames: int = 120, display_width: int = 320):
        self.inner = inner
        self.frames: collections.deque = collections.deque(maxlen=keep_frames)
        self.display_width = display_width
        self.video_rate = RateMeter()
        self.audio_rate = RateMeter()
        self.media_t = 0.0
        self.name = getattr(inner, "name", "source")

    has_video = property(lambda self: self.inner.has_video)
    has_audio = property(lambda self: self.inner.has_audio)
    problems = property(lambda self: getattr(self.inner, "problems", None) or [])

    def prepare(self) -> None:
        if hasattr(self.inner, "prepare"):
            self.inner.prepare()

    def _keep_frame(self, p: VideoFrame) -> None:
        rgb = p.rgb
        if rgb.shape[1] > self.display_width:
            import cv2

            h = round(rgb.shape[0] * self.display_width / rgb.shape[1])
            rgb = cv2.resize(rgb, (self.display_width, h), interpolation=cv2.INTER_AREA)
        self.frames.append((p.t, rgb))

    def run(self, emit, stop: threading.Event) -> float:
        def tapped(p):
            if isinstance(p, VideoFrame):
                self.video_rate.tick()
                self._keep_frame(p)
            elif isinstance(p, AudioChunk):
                self.audio_rate.tick()
            self.media_t = max(self.media_t, getattr(p, "end", p.t))
            emit(p)

        return self.inner.run(tapped, stop)

    def frame_at(self, t: float):
        """The newest kept frame at or before media time ``t`` (else the oldest kept), or None."""
        best = None
        for ft, rgb in list(self.frames):
            if ft <= t + 1e-6:
                best = rgb
            elif best is None:
                return rgb
        return best

    def close(self) -> None:
        if hasattr(self.inner, "close"):
            self.inner.close()


def overlay_landmarks(rgb: np.ndarray, landmarks, colour=(0, 255, 120)) -> np.ndarray:
    """Draw normalised (x, y) landmarks as 2x2 dots on a copy of the frame."""
    out = np.array(rgb, copy=True)
    if landmarks is None:
        return out
    lm = np.asarray(landmarks)
    if lm.ndim != 2 or lm.shape[0] == 0:
        return out
    h, w = out.shape[:2]
    xs = np.clip((lm[:, 0] * w).astype(int), 0, w - 2)
    ys = np.clip((lm[:, 1] * h).astype(int), 0, h - 2)
    for dy in (0, 1):
        for dx in (0, 1):
            out[ys + dy, xs + dx] = colour
    return out
