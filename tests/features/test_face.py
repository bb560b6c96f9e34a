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
