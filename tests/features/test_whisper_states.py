"""The acoustic stream with Whisper encoder states (issue 14): layout, chunking, spec, and who turns it on."""

from pathlib import Path

import numpy as np
import pytest

from realtime.features.acoustic import AcousticConfig, AcousticFrames, AcousticProcessor
from realtime.features.media import decode_audio
from realtime.features.specs import acoustic_spec, feature_spec
from realtime.features.whisper_states import STATE_DIM, WhisperStates, WhisperStatesConfig

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "WDA_KatieHill_000.mp4"
WITH_STATES = AcousticConfig(whisper=WhisperStatesConfig())


@pytest.fixture(scope="module")
def audio():
    return decode_audio(SAMPLE)  # the project's own 8 s sample: a fresh clone has it


@pytest.fixture(scope="module")
def proc():
    return AcousticProcessor(WITH_STATES).start()


def stream(proc, audio, chunk):
    proc.reset()
    parts = [proc.push(audio[i : i + chunk]) for i in range(0, len(audio), chunk)]
    return AcousticFrames.concat(parts + [proc.flush()], proc.config.dim)


def test_frames_are_lld_pairs_then_states_at_50_hz(proc, audio):
    got = stream(proc, audio, len(audio))
    assert got.x.shape == (398, 25 + STATE_DIM)  # 8 s: 796 LLD frames -> 398 pairs, each with its 20 ms state
    np.testing.assert_allclose(np.diff(got.t), 0.02, atol=1e-9)
    assert got.t[0] == pytest.approx(0.015)
    plain = AcousticProcessor().start().process(audio)
    # the 25 leading values are the plain stream's LLD frames averaged in pairs, exactly
    np.testing.assert_array_equal(got.x[:, :25], (plain.x[0::2] + plain.x[1::2]) / 2)
    states = got.x[:, 25:]
    assert np.isfinite(states).all() and states.std(0).mean() > 0.05  # real encoder output, not padding


def test_any_chunking_gives_identical_frames(proc, audio):
    whole = stream(proc, audio, len(audio))
    np.testing.assert_array_equal(whole.x, stream(proc, audio, 320).x)
    np.testing.assert_array_equal(whole.x, stream(proc, audio, 1237).x)  # off the frame grid
    np.testing.assert_array_equal(whole.t, stream(proc, audio, 1237).t)


def test_a_block_holds_the_states_of_its_own_stretch_with_context(proc, audio):
    """Block 2 (2-3 s) is encoded from 1-3.3 s plus one 60 ms window: its states are those of that stretch."""
    got = stream(proc, audio, len(audio))
    stretch = audio[16000 : 16000 * 33 // 10 + 960]
    enc = WhisperStates(WhisperStatesConfig()).encode(stretch, first=50, count=50)
    block = got.x[(got.t >= 2.0) & (got.t < 3.0), 25:]
    np.testing.assert_array_equal(block, enc)


def test_spec_names_the_states_and_their_layout():
    spec = acoustic_spec(WITH_STATES)
    assert (spec.dim, spec.frame_rate_hz) == (409, 50.0)
    assert spec.extractor.endswith("+whisper.encoder")
    assert "pad 1 s" in spec.extractor_version and "context 1 s" in spec.extractor_version
    plain = acoustic_spec(AcousticConfig())
    assert (plain.dim, plain.frame_rate_hz) == (25, 100.0)
    with pytest.raises(ValueError, match="acoustic.dim"):
        feature_spec(10.0).check_compatible(feature_spec(10.0, acoustic=WITH_STATES))


def test_for_spec_follows_the_checkpoint():
    assert AcousticConfig().for_spec(acoustic_spec(WITH_STATES).extractor).whisper == WhisperStatesConfig()
    assert WITH_STATES.for_spec(acoustic_spec(AcousticConfig()).extractor).whisper is None
    assert WITH_STATES.for_spec(None).whisper is None
    with pytest.raises(ValueError, match="20 ms"):
        AcousticProcessor(AcousticConfig(hop_s=0.25, whisper=WhisperStatesConfig()))


def test_stream_config_takes_the_acoustic_stream_from_the_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    from dmd_model.checkpoint import save_checkpoint
    from dmd_model.config import preset
    from dmd_model.model import DMD
    from realtime.config import PipelineConfig, StreamSettings, stream_config

    torch.manual_seed(0)
    cfg = preset("live")
    cfg = cfg.replace(input_dims=(*cfg.input_dims[:2], 409))
    save_checkpoint(DMD(cfg).eval(), tmp_path / "states", feature_spec(10.0, acoustic=WITH_STATES))
    save_checkpoint(DMD(preset("live")).eval(), tmp_path / "plain", feature_spec(10.0))
    with_states = stream_config(PipelineConfig(), StreamSettings(str(tmp_path / "states")), live=False)
    assert with_states.acoustic.whisper == WhisperStatesConfig()
    plain = stream_config(PipelineConfig(), StreamSettings(str(tmp_path / "plain")), live=False)
    assert plain.acoustic.whisper is None
    missing = stream_config(PipelineConfig(), StreamSettings(str(tmp_path / "nothing")), live=False)
    assert missing.acoustic == PipelineConfig().acoustic  # the scorer reports the missing checkpoint
