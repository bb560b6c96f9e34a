"""Issue 17, item 3: a finished pipeline is freed by reference counting alone (no reference cycle keeps its freshly
loaded models alive until a full garbage collection), and heavy models are shared across sessions."""

import gc
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
