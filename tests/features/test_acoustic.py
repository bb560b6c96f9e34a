import numpy as np
import pytest

from realtime.features.acoustic import AcousticFrames, AcousticProcessor
from realtime.features.media import decode_audio
from realtime.features.specs import EGEMAPS_LLD_NAMES


def stream(proc: AcousticProcessor, audio: np.ndarray, chunk: int) -> AcousticFrames:
    proc.reset()
    parts = [proc.push(audio[i : i + chunk]) for i in range(0, len(audio), chunk)]
    return AcousticFrames.concat(parts + [proc.flush()])


@pytest.fixture(scope="module")
def proc():
    return AcousticProcessor().start()


@pytest.fixture(scope="module", params=["WDA_KatieHill_000.mp4", "RD_Radio34_002.wav"])
def audio(request, media):
    return decode_audio(media / request.param)


def test_whole_and_20ms_chunks_give_identical_frames(proc, audio):
    whole = stream(proc, audio, len(audio))
    chunked = stream(proc, audio, 320)  # 20 ms
    odd = stream(proc, audio, 1237)  # chunks off the frame grid
    assert whole.x.shape == (796, 25)
    np.testing.assert_array_equal(whole.x, chunked.x)
    np.testing.assert_array_equal(whole.x, odd.x)
    np.testing.assert_array_equal(whole.t, chunked.t)


def test_stream_matches_opensmile_on_the_whole_signal(proc, audio):
    import opensmile

    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.LowLevelDescriptors
    )
    ref = smile.process_signal(np.clip(audio, -1, 32767 / 32768), 16000)
    assert tuple(ref.columns) == EGEMAPS_LLD_NAMES
    got = stream(proc, audio, 320)
    assert got.x.shape == ref.shape
    assert np.abs(got.x[1:] - ref.values[1:]).max() <= 1e-4
    assert got.x[:, 0].max() > 0.5  # real loudness, not zeros


def test_frames_are_stamped_every_10ms(proc, audio):
    got = stream(proc, audio, 16000)
    np.testing.assert_allclose(np.diff(got.t), 0.01, atol=1e-9)
    assert got.t[0] == pytest.approx(0.01) and got.t[-1] == pytest.approx(7.96)


def test_blocks_arrive_within_hop_plus_lookahead(proc, audio):
    proc.reset()
    cfg = proc.config
    emitted = 0
    for i in range(0, 4 * 16000, 320):
        emitted += len(proc.push(audio[i : i + 320]))
        pushed_s = (i + 320) / 16000
        # every frame whose time is older than hop + lookahead + one window has been emitted
        assert emitted * 0.01 >= pushed_s - (cfg.hop_s + cfg.lookahead_s + 0.07)


def test_start_time_offsets_timestamps(proc, audio):
    proc.reset(start_time_s=100.0)
    first = proc.push(audio[:32000])
    assert first.t[0] == pytest.approx(100.01)


def test_too_short_audio_gives_no_frames(proc):
    proc.reset()
    assert len(proc.push(np.zeros(500, np.float32))) == 0
    assert len(proc.flush()) == 0
