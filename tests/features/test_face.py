import numpy as np
import pytest

from realtime.features.face import N_BLENDSHAPES, N_LANDMARKS, FaceConfig, FaceProcessor
from realtime.features.media import iter_video_frames, load_image
from realtime.features.specs import BLENDSHAPE_NAMES


def smile(frame) -> float:
    return (frame.score("mouthSmileLeft") + frame.score("mouthSmileRight")) / 2


@pytest.fixture(scope="module")
def scores(media, astronaut):
    out = {}
    for name, img in [("astronaut", astronaut), ("happy", load_image(media / "happy.png")),
                      ("sad", load_image(media / "sad.png"))]:
        with FaceProcessor() as face:
            out[name] = face.detect(0.0, img)
    return out


def test_astronaut_smiles(scores):
    a = scores["astronaut"]
    assert a.present
    assert a.blendshapes.shape == (N_BLENDSHAPES,) and a.landmarks.shape == (N_LANDMARKS, 3)
    assert a.score("mouthSmileLeft") > 0.5 and a.score("mouthSmileRight") > 0.5


def test_sad_face_smiles_less_than_happy_and_astronaut(scores):
    assert scores["sad"].present and scores["happy"].present
    assert smile(scores["sad"]) < smile(scores["happy"])
    assert smile(scores["sad"]) < smile(scores["astronaut"])
    assert smile(scores["sad"]) < 0.05


def test_blendshape_order_matches_the_model(scores):
    # index 44/45 are the smile scores in MediaPipe's output order
    assert BLENDSHAPE_NAMES[44:46] == ("mouthSmileLeft", "mouthSmileRight")
    assert scores["astronaut"].blendshapes[0] == scores["astronaut"].score("_neutral")


def test_no_face_gives_absent_frame_not_error():
    with FaceProcessor() as face:
        r = face.detect(0.0, np.full((480, 640, 3), 128, np.uint8))
    assert not r.present and r.landmarks is None
    assert r.blendshapes.shape == (N_BLENDSHAPES,) and not r.blendshapes.any()


def test_repeated_timestamps_are_made_strictly_increasing(astronaut):
    with FaceProcessor(FaceConfig(sample_fps=0)) as face:
        a = face.push(1.0, astronaut)
        b = face.push(1.0, astronaut)  # MediaPipe would raise on a repeated timestamp
        c = face.push(0.5, astronaut)
    assert len(a) == len(b) == len(c) == 1 and c[0].present


def test_frames_are_decimated_to_sample_fps(astronaut):
    small = astronaut[::4, ::4].copy()
    with FaceProcessor(FaceConfig(sample_fps=10)) as face:
        out = [f for i in range(50) for f in face.push(i / 25, small)]  # 2 s at 25 fps
    assert len(out) == 20
    assert [round(f.t, 2) for f in out[:4]] == [0.0, 0.12, 0.2, 0.32]


def test_wrong_pixel_format_is_rejected(astronaut):
    with FaceProcessor() as face, pytest.raises(ValueError, match="uint8 RGB"):
        face.detect(0.0, astronaut.astype(np.float32))


def test_face_in_nearly_every_frame_of_shared_clip(katie):
    with FaceProcessor(FaceConfig(sample_fps=0, keep_landmarks=False)) as face:
        frames = [f for t, rgb in iter_video_frames(katie) for f in face.push(t, rgb)]
    present = np.array([f.present for f in frames])
    assert len(frames) == 200
    assert present.mean() >= 0.95


# -- geometry and still images ----------------------------------------------------------------------------------
def _toy_landmarks() -> np.ndarray:
    """478 normalised landmarks of a 200x100 image with the indices the geometry reads placed by hand (pixels)."""
    from realtime.features import face_geometry as g

    px = np.zeros((478, 2))
    px[g.EYE_OUTER_R], px[g.EYE_OUTER_L] = (60, 40), (140, 40)  # eye-corner distance 80 px
    px[g.EYE_UPPER_R], px[g.EYE_LOWER_R] = (80, 36), (80, 44)  # 8 px -> 0.1
    px[g.EYE_UPPER_L], px[g.EYE_LOWER_L] = (120, 38), (120, 42)  # 4 px -> 0.05
    px[g.BROW_MID_R], px[g.EYE_UPPER_R] = (80, 20), (80, 36)  # 16 px -> 0.2
    px[g.BROW_MID_L] = (120, 22)  # 16 px over (120, 38) -> 0.2
    px[g.BROW_INNER_R], px[g.BROW_INNER_L] = (92, 24), (108, 24)  # 16 px -> 0.2
    px[g.MOUTH_CORNER_R], px[g.MOUTH_CORNER_L] = (76, 76), (124, 76)  # 48 px -> 0.6
    px[g.LIP_INNER_UPPER], px[g.LIP_INNER_LOWER] = (100, 80), (100, 84)  # 4 px -> 0.05; centre y 82
    px[g.LIP_OUTER_UPPER], px[g.NOSE_TIP], px[g.CHIN] = (100, 74), (100, 58), (100, 98)  # 16 -> 0.2, 40 -> 0.5
    lm = np.zeros((478, 3), np.float32)
    lm[:, 0], lm[:, 1] = px[:, 0] / 200, px[:, 1] / 100
    return lm


def test_geometry_values_are_the_hand_measured_distances():
    from realtime.features.face_geometry import GEOMETRY_NAMES, face_geometry

    geo = dict(zip(GEOMETRY_NAMES[:13], face_geometry(_toy_landmarks(), 200, 100)[:13]))
    expected = {"headYaw": 0.0, "headPitch": 0.0, "headRoll": 0.0, "mouthWidth": 0.6, "mouthOpen": 0.05,
                "eyeOpenRight": 0.1, "eyeOpenLeft": 0.05, "browRaiseRight": 0.2, "browRaiseLeft": 0.2,
                "browInnerGap": 0.2, "mouthCornerLift": 0.075, "upperLipToNose": 0.2, "noseToChin": 0.5}
    assert geo == pytest.approx(expected, abs=1e-6)


def test_contour_shape_is_eye_centred_de_rolled_and_in_eye_widths():
    from realtime.features import face_geometry as g

    geo = dict(zip(g.GEOMETRY_NAMES, g.face_geometry(_toy_landmarks(), 200, 100)))
    assert len(g.GEOMETRY_NAMES) == 13 + 2 * 128 == g.N_GEOMETRY
    # eye midpoint (100, 40); eye-corner distance 80 px
    assert geo["contour263x"] == pytest.approx(0.5) and geo["contour263y"] == pytest.approx(0.0)  # left eye corner
    assert geo["contour33x"] == pytest.approx(-0.5)
    assert geo["contour61x"] == pytest.approx(-0.3) and geo["contour61y"] == pytest.approx(0.45)  # (76, 76)
    assert geo["contour152x"] == pytest.approx(0.0) and geo["contour152y"] == pytest.approx(0.725)  # chin (100, 98)
    assert geo["contour7x"] == pytest.approx(-1.25) and geo["contour7y"] == pytest.approx(-0.5)  # unset: (0, 0) px


def test_a_collapsed_eye_distance_cannot_blow_up_the_geometry():
    from realtime.features import face_geometry as g

    lm = _toy_landmarks()
    lm[g.EYE_OUTER_L, 0] = lm[g.EYE_OUTER_R, 0] + 0.001  # outer eye corners 0.2 px apart: a face in profile
    geo = g.face_geometry(lm, 200, 100)
    assert np.abs(geo).max() == g.GEOMETRY_CLIP == 5.0
    named = dict(zip(g.GEOMETRY_NAMES, geo))
    assert named["mouthWidth"] == 5.0 and named["contour152y"] == 5.0  # 240 and 290 eye widths before clipping
    assert named["headYaw"] == 0.0  # radians are never clipped in practice (|angle| <= pi < 5)


def test_contour_landmarks_are_mediapipes_contours():
    from mediapipe.tasks.python import vision

    from realtime.features.face_geometry import CONTOUR_LANDMARKS

    conns = vision.FaceLandmarksConnections.FACE_LANDMARKS_CONTOURS
    assert CONTOUR_LANDMARKS == tuple(sorted({i for c in conns for i in (c.start, c.end)}))


def test_geometry_ignores_roll_scale_and_position():
    from realtime.features.face_geometry import face_geometry

    lm = _toy_landmarks()
    px = lm[:, :2] * (200, 100)
    a = 0.4  # rotate the face 0.4 rad in the image plane, shrink it by 2 and move it
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = (px - 100) @ rot.T * 0.5 + (300, 250)
    lm2 = np.zeros_like(lm)
    lm2[:, 0], lm2[:, 1] = moved[:, 0] / 640, moved[:, 1] / 480
    np.testing.assert_allclose(face_geometry(lm2, 640, 480), face_geometry(lm, 200, 100), atol=1e-5)


def test_head_pose_reads_the_transformation_matrix():
    from realtime.features.face_geometry import head_pose

    a = 0.3
    m = np.eye(4)
    m[:3, :3] = 2.0 * np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])  # roll, scale 2
    assert head_pose(m) == pytest.approx((0.0, 0.0, 0.3))
    m[:3, :3] = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])  # yaw
    assert head_pose(m) == pytest.approx((0.3, 0.0, 0.0))
    assert head_pose(None) == (0.0, 0.0, 0.0)


def test_visual_vector_is_blendshapes_then_geometry(scores):
    from realtime.features.face import VISUAL_DIM, VISUAL_NAMES

    a = scores["astronaut"]
    assert VISUAL_DIM == 321 and VISUAL_NAMES[52] == "headYaw" and a.vector.shape == (321,)
    assert VISUAL_NAMES[65] == "contour0x" and VISUAL_NAMES[-1] == "contour466y"
    np.testing.assert_array_equal(a.vector[:52], a.blendshapes)
    assert 0.5 < a.geometry[VISUAL_NAMES.index("mouthWidth") - 52] < 1.0  # a broad smile, about 0.7 eye widths
    assert a.geometry[VISUAL_NAMES.index("mouthCornerLift") - 52] > 0  # corners up


def test_still_image_retry_finds_a_face_the_plain_detector_misses(shared_data):
    img_path = shared_data / "faces" / "fer2013" / "test" / "angry" / "PrivateTest_10131363.jpg"
    if not img_path.is_file():
        pytest.skip(f"FER2013 test image not found at {img_path}")
    img = load_image(img_path)
    assert img.shape == (48, 48, 3)
    with FaceProcessor(FaceConfig(still_retries=())) as plain, FaceProcessor() as retry:
        assert not plain.detect_still(img).present
        found = retry.detect_still(img)
    assert found.present and found.vector.shape == (321,)
    # landmarks are mapped back into the 48x48 image, not left in the enlarged copy's coordinates
    assert 0.0 < found.landmarks[:, :2].min() and found.landmarks[:, :2].max() < 1.0


def test_still_retry_maps_landmarks_back_to_the_original(astronaut):
    with FaceProcessor() as plain:
        ref = plain.detect_still(astronaut)
    # never accept the plain try: the 2x enlarged copy's landmarks must land where the plain ones are
    with FaceProcessor(FaceConfig(min_face_detection_confidence=1.0, still_retries=((2.0, 0.0, 0.5),))) as retry:
        got = retry.detect_still(astronaut)
    assert ref.present and got.present
    assert np.abs(got.landmarks[:, :2] - ref.landmarks[:, :2]).max() < 0.005


def test_still_views_are_the_image_its_mirror_and_two_rotations():
    from realtime.features.face import STILL_VIEWS, still_views

    img = np.zeros((40, 60, 3), np.uint8)
    img[5:10, 2:8] = 255  # a bright block near the top-left corner
    views = still_views(img)
    assert len(views) == len(STILL_VIEWS) == 4 and all(v.shape == img.shape for v in views)
    np.testing.assert_array_equal(views[0], img)
    np.testing.assert_array_equal(views[1], img[:, ::-1])
    # +10 degrees turns the image counter-clockwise about its centre: a top-left block moves down
    ys = lambda v: np.nonzero(v[..., 0] > 127)[0].mean()  # noqa: E731
    assert ys(views[2]) > ys(img) and ys(views[3]) < ys(img)


def test_still_frames_cycle_through_the_views(astronaut):
    from realtime.features.face import still_views

    with FaceProcessor() as fp:
        frames = fp.detect_still_frames(astronaut, 10, 10.0)
        views = [fp.detect_still(v) for v in still_views(astronaut)]
    assert [f.t for f in frames] == pytest.approx([i / 10 for i in range(10)])
    assert all(f.present for f in frames)
    for i, f in enumerate(frames):
        np.testing.assert_array_equal(f.vector, views[i % 4].vector)
    # the views really differ: the mirror swaps the eyes' sides, so the smile's left/right scores trade places
    assert not np.array_equal(frames[0].vector, frames[1].vector)
    assert frames[1].geometry[2] == pytest.approx(-frames[0].geometry[2], abs=0.05)  # head roll mirrored
