"""Live windows are scored once their end has passed, not when the next camera frame arrives: the browser source's
`ClockTick`s move the face stage's watermark when it has no frame waiting."""

import math
import threading
import time

import numpy as np
import pytest
from fakes import FakeCore, FakeText, fake_scorer, wait_until

from realtime.packets import ClockTick, Watermark
from realtime.pipeline import Pipeline, PipelineConfig
from realtime.queues import BoundedQueue
from realtime.sources.live import BrowserConfig, BrowserSource
from realtime.stages import FaceStage, StageThread
from realtime.window import WindowConfig


class NoFaceProcessor:
    def start(self):
        pass

    def push(self, t, rgb):
        return []

    def reset(self):
        pass

    def close(self):
        pass


def test_a_tick_moves_the_face_watermark_without_counting_as_work():
    inbox, out, stop = BoundedQueue(8), [], threading.Event()
    th = StageThread(FaceStage(NoFaceProcessor()), inbox, out.append, stop)
    th.start()
    inbox.put(ClockTick(1.25))
    inbox.put(ClockTick(0.5))  # never backwards
    assert wait_until(lambda: len(out) >= 2, 5)
    stop.set()
    assert th.join(2)
    assert out == [Watermark("face", 1.25), Watermark("face", 1.25)]
    assert th.stats.packets == 0 and th.stats.busy_s == 0.0


@pytest.fixture(scope="module")
def scorer(live_checkpoint):
    return fake_scorer(live_checkpoint)


def test_microphone_only_browser_stream_is_scored(scorer):
    """The camera off, the microphone on: before the ticks, no face frame ever moved the face watermark, so the
    live window (paced by the face stage) never scored a window; now every hop is scored from the voice alone."""
    src = BrowserSource(BrowserConfig(tick_s=0.01))
    cfg = PipelineConfig(window=WindowConfig(window_s=1.0, hop_s=0.25, wait_for_all=False), live=True,
                         defer_words=True)
    cores = {"face": FaceStage(NoFaceProcessor()), "acoustic": FakeCore("acoustic"),
             "transcript": FakeCore("transcript")}
    results = []
    p = Pipeline(cfg, src, [results.append], scorer=scorer, cores=cores, text_encoder=FakeText())
    p.start()
    try:
        for _ in range(8):  # 0.1 s chunks in real time: 0.8 s of audio
            src.push_audio(16000, np.zeros(1600, np.int16))
            time.sleep(0.1)
        assert wait_until(lambda: len(results) >= 2, 5), p.metrics()
    finally:
        p.stop()
    ts = [r.t for r in results]
    # each live window ends at the newest tick once its hop is due (within a few 10 ms ticks of it)
    assert 0.25 <= ts[0] < 0.35 and 0.5 <= ts[1] < 0.6
    assert all(r.present["visual"] is False and r.present["acoustic"] is True for r in results)
    assert all(math.isfinite(r.valence) for r in results)
    assert p.metrics()["stages"]["face"]["packets"] == 0
    assert p.language.defer and all("language_deferred" in r.latency_ms for r in results)
    assert {n: st.nice for n, st in p.stages.items()} == {"face": 0, "acoustic": 5, "transcript": 5}


def test_a_stage_reports_how_long_a_frame_waited_before_it():
    """`StageStats.last_wait_ms`: from the frame's capture (its t_mono) to the stage starting on it."""
    from realtime.clock import monotonic
    from realtime.packets import VideoFrame

    inbox, out, stop = BoundedQueue(8), [], threading.Event()
    th = StageThread(FaceStage(NoFaceProcessor()), inbox, out.append, stop)
    th.start()
    inbox.put(VideoFrame(t=0.1, t_mono=monotonic() - 0.3, rgb=np.zeros((4, 4, 3), np.uint8)))
    assert wait_until(lambda: th.stats.packets == 1, 5)
    stop.set()
    assert th.join(2)
    assert 300.0 <= th.stats.last_wait_ms < 2300.0  # at least the 0.3 s it was old when queued


def test_no_tick_while_frames_flow_and_ticks_again_when_they_stop():
    """While frames come, a due window waits for the next frame (the score then holds it); a camera that goes away
    (no frame for `frame_gap_s`) brings the ticks back."""
    src = BrowserSource(BrowserConfig(tick_s=0.01, frame_gap_s=0.2))
    got, stop = [], threading.Event()
    th = threading.Thread(target=src.run, args=(got.append, stop), daemon=True)
    th.start()
    rgb = np.zeros((4, 4, 3), np.uint8)
    try:
        for _ in range(10):  # 0.5 s of frames every 0.05 s: the inbox is idle between them, yet no tick
            src.push_frame(rgb)
            time.sleep(0.05)
        last = max(p.t for p in got if not isinstance(p, ClockTick))
        assert not [p for p in got if isinstance(p, ClockTick)]
        time.sleep(0.4)
    finally:
        stop.set()
        th.join(2)
    ticks = [p.t for p in got if isinstance(p, ClockTick)]
    assert ticks and min(ticks) >= last + 0.2 - 0.06  # the first tick once the frames have been gone 0.2 s


def test_a_stage_thread_runs_its_core_at_the_lower_priority_asked():
    """`StageThread(nice=N)` raises its thread's nice value by N before the core starts (live voice stages)."""
    import os
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("per-thread nice values are a Linux feature")

    class Probe(NoFaceProcessor):
        def start(self):
            self.nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    probes = []
    for nice in (0, 3):
        probe, stop = Probe(), threading.Event()
        th = StageThread(FaceStage(probe), BoundedQueue(2), lambda _: None, stop, nice=nice)
        th.start()
        assert wait_until(lambda: hasattr(probe, "nice"), 5)
        stop.set()
        assert th.join(2)
        probes.append(probe.nice)
    assert probes == [base, min(19, base + 3)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the caller's own is untouched
