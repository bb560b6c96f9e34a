import numpy as np
import pytest

from realtime.features import media
from realtime.features.media import MediaError


def test_probe_shared_clip(katie):
    info = media.probe(katie)
    assert (info.kind, info.has_video, info.has_audio) == ("video", True, True)
    assert (info.width, info.height, info.fps, info.duration_s) == (512, 512, 25.0, 8.0)


def test_probe_audio_and_image(media):
    from realtime.features.media import probe

    a = probe(media / "RD_Radio31_000.wav")
    assert (a.kind, a.has_video, a.has_audio, a.duration_s) == ("audio", False, True, 8.0)
    im = probe(media / "happy.png")
    assert (im.kind, im.has_audio, im.width, im.height) == ("image", False, 256, 256)


def test_video_frames_have_increasing_media_times(katie):
    frames = list(media.iter_video_frames(katie))
    t = np.array([f[0] for f in frames])
    assert len(frames) == 200
    assert t[0] == 0.0 and t[-1] == pytest.approx(7.96)
    assert np.all(np.diff(t) > 0)
    assert frames[0][1].shape == (512, 512, 3) and frames[0][1].dtype == np.uint8


def test_audio_is_16k_mono_clipped(katie):
    a = media.decode_audio(katie)
    assert a.dtype == np.float32 and a.shape == (128000,)
    assert np.abs(a).max() <= 1.0


def test_empty_file_is_a_clear_error(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        media.probe(p)


def test_truncated_mp4_is_a_clear_error(katie, tmp_path):
    p = tmp_path / "cut.mp4"
    p.write_bytes(katie.read_bytes()[:1_000_000])  # the mp4 index (moov) sits at the end of this file
    with pytest.raises(MediaError, match="corrupt or truncated"):
        media.probe(p)


def test_garbage_and_missing_files_are_clear_errors(tmp_path):
    p = tmp_path / "junk.mp4"
    p.write_bytes(b"not a video" * 500)
    with pytest.raises(MediaError, match="cannot be opened as media"):
        media.probe(p)
    with pytest.raises(MediaError, match="no such file"):
        media.probe(tmp_path / "nothing.mp4")


def test_image_has_no_audio_stream(media):
    from realtime.features.media import decode_audio

    with pytest.raises(MediaError, match="has no audio stream"):
        decode_audio(media / "sad.png")
