"""Face geometry beside the blendshapes: head pose, a few landmark distances and the contour shape, scale-free.

Blendshapes describe expression muscles but drop head pose and the face's proportions; probes on FER2013
gained 1 to 2 points from simple geometry (issue #7), and about 1.5 more from the contour shape (the
aligned x, y of MediaPipe's 128 contour landmarks: lips, eyes, brows, face oval; docs/features.md).
Everything here is computed from one frame's MediaPipe landmarks (and its facial transformation
matrix), in pixel units with the in-plane roll removed, divided by the distance between the outer eye
corners, so it does not depend on image size, face size or border. The contour shape is a fixed
landmark subset, not a basis fitted on some corpus, so it means the same on any face.

Landmark indices are those of MediaPipe's 478-point face mesh (canonical_face_model_uv_visualization).
"""

from __future__ import annotations

import numpy as np

# MediaPipe face-mesh landmark indices ("right"/"left" are the subject's).
EYE_OUTER_R, EYE_OUTER_L = 33, 263
EYE_UPPER_R, EYE_LOWER_R = 159, 145
EYE_UPPER_L, EYE_LOWER_L = 386, 374
BROW_MID_R, BROW_MID_L = 105, 334
BROW_INNER_R, BROW_INNER_L = 107, 336
MOUTH_CORNER_R, MOUTH_CORNER_L = 61, 291
LIP_INNER_UPPER, LIP_INNER_LOWER = 13, 14
LIP_OUTER_UPPER, LIP_OUTER_LOWER = 0, 17
NOSE_TIP, CHIN = 1, 152

MEASURE_NAMES: tuple[str, ...] = (
    "headYaw",  # radians, from the facial transformation matrix
    "headPitch",
    "headRoll",
    "mouthWidth",  # the rest: distances / outer-eye-corner distance
    "mouthOpen",
    "eyeOpenRight",
    "eyeOpenLeft",
    "browRaiseRight",
    "browRaiseLeft",
    "browInnerGap",
    "mouthCornerLift",  # mouth centre height minus mouth-corner height (> 0: corners up)
    "upperLipToNose",
    "noseToChin",
)

CONTOUR_LANDMARKS: tuple[int, ...] = (
    0, 7, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80, 81, 82, 84,
    87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149, 150, 152, 153, 154, 155,
    157, 158, 159, 160, 161, 162, 163, 172, 173, 176, 178, 181, 185, 191, 234, 246, 249, 251, 263, 267, 269, 270,
    276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324,
    332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386, 387, 388,
    389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466,
)
"""The 128 landmarks of MediaPipe's ``FaceLandmarksConnections.FACE_LANDMARKS_CONTOURS`` (every endpoint,
sorted; tested against mediapipe): lips, eyes, brows and face oval, where expressions show."""
_CONTOUR_INDEX = np.array(CONTOUR_LANDMARKS)  # built once: face_geometry runs on every video frame

SHAPE_NAMES: tuple[str, ...] = tuple(f"contour{i}{axis}" for i in CONTOUR_LANDMARKS for axis in "xy")
"""x (towards the subject's left eye) and y (down the face) of each contour landmark, relative to the eye
midpoint, in outer-eye-corner distances, roll removed."""

GEOMETRY_NAMES: tuple[str, ...] = MEASURE_NAMES + SHAPE_NAMES
"""The geometry block of the visual vector: the 13 pose and distance values, then the contour shape."""
N_GEOMETRY = len(GEOMETRY_NAMES)
GEOMETRY_CLIP = 5.0
"""Geometry values are clipped to +-5 eye widths (radians for the pose, which stay within +-pi anyway). A face
seen nearly in profile has its outer eye corners almost on top of each other, and dividing by that distance
gave values up to 3,307 on FER2013 (99.99 % of frames stay under 11.3; a real face spans about +-2 eye widths):
such values would swamp the standardised input and the reconstruction loss."""

GEOMETRY_VERSION = "geometry v2"
"""Stamped in the feature spec: v1 was the 13 pose/distance values alone (65-d visual vector)."""


def head_pose(matrix: np.ndarray | None) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in radians from MediaPipe's 4x4 facial transformation matrix (zeros if None)."""
    if matrix is None:
        return 0.0, 0.0, 0.0
    r = np.asarray(matrix, dtype=np.float64)[:3, :3]
    r = r / np.linalg.norm(r, axis=0, keepdims=True)  # the matrix may carry scale
    yaw = float(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    pitch = float(np.arctan2(r[2, 1], r[2, 2]))
    roll = float(np.arctan2(r[1, 0], r[0, 0]))
    return yaw, pitch, roll


def face_geometry(landmarks: np.ndarray, width: int, height: int, matrix: np.ndarray | None = None) -> np.ndarray:
    """The (N_GEOMETRY,) float32 geometry vector of one face: pose, distances, then the contour shape.

    Args:
        landmarks: (478, 3) normalised landmarks (x of width, y of height), as MediaPipe gives them.
        width, height: the image size in pixels, so that x and y get the same unit.
        matrix: the 4x4 facial transformation matrix for head pose, or None (pose zeros).
    """
    p = np.asarray(landmarks, dtype=np.float64)[:, :2] * (float(width), float(height))
    eye_r, eye_l = p[EYE_OUTER_R], p[EYE_OUTER_L]
    # Rotate about the eye midpoint so the eye line is horizontal: y differences are then "up the face".
    d = eye_l - eye_r
    angle = np.arctan2(d[1], d[0])
    c, s = np.cos(-angle), np.sin(-angle)
    p = (p - (eye_r + eye_l) / 2) @ np.array([[c, s], [-s, c]])
    iod = float(np.hypot(*d)) or 1.0

    def dist(a: int, b: int) -> float:
        return float(np.hypot(*(p[a] - p[b]))) / iod

    mouth_centre_y = (p[LIP_INNER_UPPER, 1] + p[LIP_INNER_LOWER, 1]) / 2
    corner_y = (p[MOUTH_CORNER_R, 1] + p[MOUTH_CORNER_L, 1]) / 2
    values = (
        *head_pose(matrix),
        dist(MOUTH_CORNER_R, MOUTH_CORNER_L),
        dist(LIP_INNER_UPPER, LIP_INNER_LOWER),
        dist(EYE_UPPER_R, EYE_LOWER_R),
        dist(EYE_UPPER_L, EYE_LOWER_L),
        dist(BROW_MID_R, EYE_UPPER_R),
        dist(BROW_MID_L, EYE_UPPER_L),
        dist(BROW_INNER_R, BROW_INNER_L),
        (mouth_centre_y - corner_y) / iod,
        dist(LIP_OUTER_UPPER, NOSE_TIP),
        dist(NOSE_TIP, CHIN),
    )
    shape = p[_CONTOUR_INDEX] / iod  # already centred on the eye midpoint and de-rolled
    out = np.concatenate([np.asarray(values, dtype=np.float64), shape.ravel()])
    return np.clip(out, -GEOMETRY_CLIP, GEOMETRY_CLIP).astype(np.float32)
