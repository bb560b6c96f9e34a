import threading
import time

import numpy as np
import pytest

from realtime.packets import AudioChunk, VideoFrame
from realtime.sources import SourceError
from realtime.sources.live import BrowserSource, MicrophoneSource, WebcamSource, to_mono_16k


def test_resampling_48k_int16_to_16k_float():
    t = np.arange(48000) / 48000
    x = (np.sin(2 * np.pi * 440 * t) * 16384).astype(np.int16)
    y = to_mono_16k(48000, x)
    assert y.shape == (16000,) and y.dtype == np.float32
    assert np.abs(y).max() == pytest.approx(0.5, abs=0.01)
    stereo = np.stack([x, x], 1)
    np.testing.assert_allclose(to_mono_16k(48000, stereo), y, atol=1e-6)


def test_browser_source_stamps_one_clock_and_keeps_audio_contiguous():
    src = BrowserSource()
    got = []
    stop = threading.Event()
    th = threading.Thread(target=lambda: src.run(got.append, stop))
    th.start()
    src.push_frame(np.zeros((480, 640, 3), np.uint8))
    for _ in range(3):
        src.push_audio(48000, np.zeros(24000, np.int16))  # 0.5 s chunks, as Gradio streams them
        time.sleep(0.02)
    time.sleep(0.2)
    stop.set()
    th.join(2)
    frames = [p for p in got if isinstance(p, VideoFrame)]
    audio = [p for p in got if isinstance(p, AudioChunk)]
    assert len(frames) == 1 and frames[0].rgb.shape == (480, 640, 3)
    assert [len(a.samples) for a in audio] == [8000, 8000, 8000]
    assert audio[1].t == pytest.approx(audio[0].end) and audio[2].t == pytest.approx(audio[1].end)


def test_missing_camera_is_a_clear_error():
    with pytest.raises(SourceError, match="no camera could be opened at index 97"):
        WebcamSource(index=97).prepare()


def test_missing_microphone_is_a_clear_error():
    try:
        MicrophoneSource(device=97).prepare()
    except SourceError as e:
        assert "microphone" in str(e)
    else:
        pytest.skip("this machine has a usable input device 97")


def test_browser_source_ticks_its_clock_in_order_with_the_packets():
    """While nothing arrives the source says how far its clock has got (`ClockTick`), never before the first
    packet (no clock yet), and every tick comes after all packets stamped before it."""
    from realtime.packets import ClockTick
    from realtime.sources.live import BrowserConfig

    src = BrowserSource(BrowserConfig(tick_s=0.01, frame_gap_s=0.0))  # ticks between frames too: their order
    got = []
    stop = threading.Event()
    th = threading.Thread(target=lambda: src.run(got.append, stop))
    th.start()
    time.sleep(0.1)
    assert got == []  # no packet yet: nothing to tick
    for _ in range(5):
        src.push_frame(np.zeros((4, 4, 3), np.uint8))
        time.sleep(0.05)
    stop.set()
    th.join(2)
    ticks = [p.t for p in got if isinstance(p, ClockTick)]
    assert len(ticks) >= 5
    assert ticks == sorted(ticks)
    newest = -1.0
    for p in got:
        if isinstance(p, ClockTick):
            assert p.t >= newest
        else:
            newest = max(newest, p.t)
