"""Issue 17, item 3: a finished pipeline is freed by reference counting alone (no reference cycle keeps its freshly
loaded models alive until a full garbage collection), and heavy models are shared across sessions."""

import gc
from pathlib import Path
import weakref

import pytest
from fakes import FakeCore, FakeSource, FakeText, fake_scorer

from realtime.pipeline import Pipeline, PipelineConfig
from realtime.window import WindowConfig


@pytest.fixture(scope="module")
def scorer(live_checkpoint):
    return fake_scorer(live_checkpoint)


class Heavy:
    """Stands for a loaded model held by a stage core."""


def _finished_pipeline(scorer, stop: bool):
    cores = {n: FakeCore(n) for n in ("face", "acoustic", "transcript")}
    heavy = Heavy()
    for c in cores.values():
        c.model = heavy
    results = []
    p = Pipeline(PipelineConfig(window=WindowConfig(window_s=1.0, hop_s=0.25)), FakeSource(duration=2.0),
                 [results.append], scorer=scorer, cores=cores, text_encoder=FakeText())
    p.start()
    assert p.wait(20)
    for st in p.stages.values():
        assert st.join(5)
    for t in p._threads:
        t.join(5)
    if stop:
        assert p.stop() == []
    return weakref.ref(p), weakref.ref(heavy), results


@pytest.mark.parametrize("stop", [True, False])
def test_a_finished_pipeline_is_freed_without_the_garbage_collector(scorer, stop):
    gc.collect()
    gc.disable()
    try:
        p_ref, heavy_ref, results = _finished_pipeline(scorer, stop)
        assert len(results) == 8
        assert p_ref() is None, [type(r).__name__ for r in gc.get_referrers(p_ref())]
        assert heavy_ref() is None
    finally:
        gc.enable()


def test_model_cache_builds_once_per_key_and_bounds_its_size():
    from realtime.models import ModelCache

    cache = ModelCache(max_entries=2)
    built = []
    make = lambda k: cache.get(k, lambda: built.append(k) or object())  # noqa: E731
    a = make("a")
    assert make("a") is a and built == ["a"]
    make("b"), make("c")
    assert len(cache) == 2 and make("a") is not a and built == ["a", "b", "c", "a"]


def test_pipelines_take_opensmile_from_the_shared_cache():
    from realtime.models import SHARED, ModelCache

    p = Pipeline(PipelineConfig(), FakeSource())
    assert p._core("acoustic").processor._models is SHARED
    own = ModelCache()
    q = Pipeline(PipelineConfig(), FakeSource(), models=own)
    assert q._core("acoustic").processor._models is own


@pytest.mark.slow
def test_two_streams_share_one_smile():
    import numpy as np

    from realtime.features.acoustic import AcousticProcessor
    from realtime.models import ModelCache

    cache = ModelCache()
    x, y = (AcousticProcessor(models=cache).start() for _ in range(2))
    assert x._smile is y._smile and cache.loads == 1
    tone = np.sin(np.arange(48000) * 2 * np.pi * 220 / 16000).astype(np.float32)
    own = AcousticProcessor().start()
    a, b = x.process(tone), own.process(tone)  # the shared extractor gives the same numbers as a private one
    assert np.array_equal(a.x, b.x) and len(a.x)


def test_release_freed_memory_gives_a_threads_fragmented_heap_back():
    import threading

    from benchmarks.soak import rss_mb
    from realtime.memory import _glibc, release_freed_memory

    if _glibc() is None:
        pytest.skip("the C library is not glibc: malloc_trim does not exist here")
    pinned = []

    def work():  # what a stream's stage thread leaves: freed heap chunks with live ones between them
        blocks = [bytearray(64 * 1024) for _ in range(4000)]  # 250 MB of 64 KB chunks (below the mmap threshold)
        pinned.extend(blocks[1::8])
        del blocks

    base = rss_mb()
    t = threading.Thread(target=work)
    t.start()
    t.join()
    held = rss_mb()
    assert held - base > 150  # freed, but glibc kept the pages: the growth the soak saw
    assert release_freed_memory()
    assert held - rss_mb() > 150
    assert len(pinned) == 500 and all(len(b) == 64 * 1024 for b in pinned)


def in_a_fresh_process(script: str, arg: str) -> float:
    """Run `script` with `arg` in a new interpreter (allocator settings are process-wide) and return the number it
    prints; skips where the C library is not glibc."""
    import subprocess
    import sys

    from realtime.memory import _glibc

    if _glibc() is None:
        pytest.skip("the C library is not glibc: mallopt does not exist here")
    out = subprocess.run([sys.executable, "-c", script, arg], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    return float(out.stdout)


_FRAMES_AFTER_A_BIG_FREE = """
import sys
from realtime.memory import return_big_blocks
if sys.argv[1] == "fixed":
    assert return_big_blocks()
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
big = bytearray(8 << 20)
del big  # a freed 8 MB mmapped block: glibc's dynamic threshold rises to 8 MB
base = rss()
frames = [bytearray(512 * 1024) for _ in range(400)]  # 200 MB of frame-sized buffers
kept = frames[1::8]  # a few still referenced, as a display buffer holds some
del frames
print(rss() - base)
"""


@pytest.mark.parametrize("mode", ["dynamic", "fixed"])
def test_a_fixed_mmap_threshold_returns_freed_frame_buffers_at_once(mode):
    """What kept RSS up across replays: with glibc's dynamic threshold, freed frame-sized buffers stay in the heap
    (200 MB held here); with the threshold fixed (run_demo.py does it first thing) only the kept ones are."""
    held = in_a_fresh_process(_FRAMES_AFTER_A_BIG_FREE, mode)
    if mode == "dynamic":
        assert held > 150, held  # without the fix: what the soak saw
    else:
        assert held < 40, held  # 50 kept buffers of 0.5 MB, plus interpreter noise


_FAULTS_ON_A_REUSED_BLOCK = """
import resource, sys
from realtime.memory import apply_policy
assert apply_policy(sys.argv[1])
for _ in range(3):
    block = bytearray(4 << 20)  # a 4 MB tensor-sized block, freed and allocated again as a scorer's passes do
    del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    block = bytearray(4 << 20)
    del block
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


@pytest.mark.parametrize("policy", ["flat", "fast"])
def test_the_fast_policy_reuses_freed_blocks_and_the_flat_one_maps_them_afresh(policy):
    """The trade `run_demo.py --memory` offers: under "flat" a freed 4 MB block is unmapped and the next one faults
    its 1,024 pages in again; under "fast" it is reused from the heap without a fault."""
    faults = in_a_fresh_process(_FAULTS_ON_A_REUSED_BLOCK, policy)
    if policy == "flat":
        assert faults >= 1000, faults  # every page of the 4 MB block, every time
    else:
        assert faults < 50, faults


def test_an_unknown_memory_policy_is_refused():
    from realtime.memory import apply_policy

    with pytest.raises(ValueError, match="expected one of"):
        apply_policy("tight")


def test_return_big_blocks_refuses_a_threshold_below_a_page():
    from realtime.memory import return_big_blocks

    with pytest.raises(ValueError, match="one page"):
        return_big_blocks(100)


def test_summaries_drawn_from_many_threads_leave_no_more_files_open(tmp_path):
    """matplotlib keeps fonts open per thread: drawn on the shared render thread, a fifth summary opens nothing new."""
    import os
    import threading

    from realtime.ui import plots
    from realtime.ui.render_thread import on_render_thread

    rows = [(0.25 * i, {"fused": 0.1 * (i % 5) - 0.2}) for i in range(12)]
    avg = plots.EdgeAverager()
    fds = []

    def one(k):
        on_render_thread(plots.summary_png, rows, avg, tmp_path / f"s{k}.png", title=f"run {k}")
        fds.append(len(os.listdir("/proc/self/fd")))

    for k in range(5):  # each "stream" ends on a new thread, as Session._launch's do
        t = threading.Thread(target=one, args=(k,))
        t.start()
        t.join()
    assert all((tmp_path / f"s{k}.png").stat().st_size > 10_000 for k in range(5))
    assert fds[1:] == [fds[0]] * 4, fds


@pytest.mark.parametrize("argv, policy", [([], "flat"), (["--memory", "fast"], "fast"),
                                          (["--replay", "a.mp4", "--headless"], "fast"),
                                          (["--replay", "a.mp4", "--headless", "--memory", "flat"], "flat")])
def test_the_page_keeps_memory_flat_and_a_headless_replay_fast(argv, policy):
    from realtime.memory import POLICIES
    from run_demo import build_parser, memory_policy

    parser = build_parser()
    assert memory_policy(parser.parse_args(argv)) == policy
    assert set(parser._option_string_actions["--memory"].choices) == set(POLICIES)


def test_a_benchmark_says_which_policy_its_figures_ran_under():
    from realtime.memory import benchmark_policy

    assert benchmark_policy("default") == "allocator policy: default"  # glibc's own: nothing set
    with pytest.raises(ValueError, match="expected one of"):
        benchmark_policy("tight")
