"""Fault behaviour of the pipeline, with fake sources and cores (no models loaded): failures are reported and the
other modalities keep scoring with masks; a stall does not grow memory; stop is clean and idempotent."""

import math
import threading
import time

import pytest
from fakes import FakeCore, FakeSource, FakeText, fake_scorer, wait_until

from realtime.pipeline import Pipeline, PipelineConfig
from realtime.window import WindowConfig


@pytest.fixture(scope="module")
def scorer(live_checkpoint):
    return fake_scorer(live_checkpoint)


def pipeline(scorer, source, cores=None, **kw):
    cfg = PipelineConfig(window=WindowConfig(window_s=1.0, hop_s=0.25, wait_for_all=kw.pop("wait_for_all", True)), **kw)
    cores = cores or {n: FakeCore(n) for n in ("face", "acoustic", "transcript")}
    results = []
    p = Pipeline(cfg, source, [results.append], scorer=scorer, cores=cores, text_encoder=FakeText())
    return p, results


def test_clean_run_scores_every_hop_with_all_modalities(scorer):
    p, results = pipeline(scorer, FakeSource(duration=3.0))
    p.start()
    assert p.wait(20)
    assert p.stop() == []
    assert [r.t for r in results] == [0.25 * i for i in range(1, 13)]
    assert all(r.present == {"language": r.t >= 1.0, "visual": True, "acoustic": True} for r in results)
    assert all(st["status"] == "finished" for st in p.metrics()["stages"].values())


def test_failing_extractor_is_reported_and_the_rest_keeps_scoring(scorer):
    cores = {"face": FakeCore("face", fail_after=5), "acoustic": FakeCore("acoustic"), "transcript": FakeCore("transcript")}
    p, results = pipeline(scorer, FakeSource(duration=3.0), cores)
    p.start()
    assert p.wait(20)
    p.stop()
    status = p.metrics()["stages"]["face"]["status"]
    assert p.error is None, p.metrics()
    assert status == "failed: RuntimeError: face extractor crashed"
    assert len(results) == 12
    # before the crash the face was there; a second after it (window 1 s) it is masked out, the voice is not
    assert results[1].present["visual"] is True
    assert all(r.present["visual"] is False and r.present["acoustic"] is True for r in results if r.t >= 1.75)
    assert all(math.isfinite(r.valence) for r in results)


def test_failing_source_is_reported_and_the_pipeline_ends(scorer):
    p, results = pipeline(scorer, FakeSource(duration=5.0, fail_at=1.0))
    p.start()
    assert p.wait(20)
    p.stop()
    assert p.error == "failed: OSError: camera unplugged"
    assert results, (p.metrics(), p.scorer_status)
    assert max(r.t for r in results) <= 1.0


def test_stalled_extractor_does_not_grow_memory_and_is_masked(scorer):
    release = threading.Event()
    cores = {"face": FakeCore("face"), "acoustic": FakeCore("acoustic"),
             "transcript": FakeCore("transcript", stall_after=3, stop=release)}
    p, results = pipeline(scorer, FakeSource(duration=6.0), cores, audio_queue=20, stall_timeout_s=1.0)
    p.start()
    sizes = []
    wait_until(lambda: sizes.append(len(p.queues["transcript"])) or p.done.is_set(), timeout=30)
    release.set()
    p.stop()
    assert max(sizes) <= 21  # bounded by its capacity while stalled (+1 for the end-of-stream marker)
    assert p.metrics()["stages"]["transcript"]["status"] == "stalled"
    assert len(results) == 24  # the other modalities were scored to the end
    assert p.queues["transcript"].drops > 0  # and the stalled queue's loss is counted, not silent


def test_stop_during_startup_and_twice_is_clean(scorer):
    # stop at several moments of start-up: before, while and after the threads are created and started
    for delay in (0.0, 0.0005, 0.002, 0.01, 0.05):
        p, _ = pipeline(scorer, FakeSource(duration=60.0, realtime=True))
        t = threading.Thread(target=p.start)
        t.start()
        time.sleep(delay)
        alive = p.stop()
        t.join(5)
        assert not t.is_alive()
        assert alive == []
        assert p.stop() == []  # idempotent
        for st in p.stages.values():
            assert st.join(1.0)
        assert all(not th.is_alive() for th in p._threads)


def test_a_stop_just_before_a_thread_starts_leaves_nothing_running(scorer):
    # the race the test above hits now and then: stop() runs to its end after start()'s last check of the stop
    # event and before a thread starts; that thread must not start (stop() has already joined everything)
    p, _ = pipeline(scorer, FakeSource(duration=60.0, realtime=True))
    spawn = p._spawn

    def stop_first(fn, name):
        stopper = threading.Thread(target=p.stop)
        stopper.start()
        stopper.join(10)
        spawn(fn, name)

    p._spawn = stop_first
    p.start()
    assert p._threads == []
    assert p.stop() == []
    for st in p.stages.values():
        assert st.join(1.0)


def test_stop_mid_stream_returns_within_two_seconds(scorer):
    p, results = pipeline(scorer, FakeSource(duration=60.0, realtime=True), wait_for_all=False, live=True)
    p.start()
    assert wait_until(lambda: len(results) >= 2, timeout=10)
    t0 = time.monotonic()
    assert p.stop() == []
    assert time.monotonic() - t0 < 2.0
    assert p.done.is_set()


def test_audio_only_source_scores_with_visual_absent(scorer):
    p, results = pipeline(scorer, FakeSource(duration=2.0, video=False))
    p.start()
    assert p.wait(20)
    p.stop()
    assert "face" not in p.stages
    assert len(results) == 8 and all(r.present["visual"] is False for r in results)


def test_audio_gap_restarts_the_processor_and_keeps_pending_words():
    import numpy as np

    from dmd_model.feature_spec import Word
    from realtime.packets import AudioChunk
    from realtime.stages import TranscriptStage

    class Proc:
        def __init__(self):
            self.resets, self.pending = [], []

        def reset(self, t):
            self.resets.append(t)

        def push(self, x):
            self.pending.append(Word("hello", 0.0, 0.1))
            return []

        def flush(self):
            out, self.pending = self.pending, []
            return out

    stage = TranscriptStage(Proc())
    chunk = lambda t: AudioChunk(t=t, t_mono=0.0, samples=np.zeros(1600, np.float32))  # noqa: E731
    assert stage.push(chunk(0.0)) == [] and stage.push(chunk(0.1)) == []
    events = stage.push(chunk(5.0))  # 4.8 s of audio lost upstream
    assert stage.processor.resets == [0.0, 5.0]
    assert [w.text for w in events[0].words] == ["hello", "hello"] and events[0].t_avail == 0.2
    assert stage.watermark == 5.1
