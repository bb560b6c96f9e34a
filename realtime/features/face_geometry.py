"""Face geometry beside the blendshapes: head pose and a few landmark distances, scale-free.

Blendshapes describe expression muscles but drop head pose and the face's proportions; probes on FER2013
gained 1 to 2 points from simple geometry (issue #7). Everything here is computed from one frame's
MediaPipe landmarks (and its facial transformation matrix), in pixel units with the in-plane roll
removed, divided by the distance between the outer eye corners, so it does not depend on image size,
face size or border.

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

GEOMETRY_NAMES: tuple[str, ...] = (
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
N_GEOMETRY = len(GEOMETRY_NAMES)


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
    """The (N_GEOMETRY,) float32 geometry vector of one face.

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
    return np.asarray(values, dtype=np.float32)
