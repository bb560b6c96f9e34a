"""Who runs the model for many streams: the shared scorers (`ScorerPool`) and one scorer gathering windows from
many streams into shared batches (`BatchingScorer`).

`ScorerPool` loads each (checkpoint, device) once and hands the same started `Scorer` to every stream that asks
(loading per page tab would cost seconds and memory); `Scorer.score` takes its own lock, so the streams' scorer
threads take turns on it. A server scoring thousands of streams cannot run one forward pass per window: `BatchingScorer` collects whatever
windows arrive within ``max_wait_s`` (up to ``max_batch``), scores them in one pass of the shared `Scorer`, and
hands each caller its own results. It exposes the `Scorer` interface that `Pipeline` uses (``score``, ``model``,
``last_ms``), so it can be passed as a pipeline's ``scorer``.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path

from .queues import BoundedQueue, Closed, Empty, Policy


class ScorerPool:
    """Loads each (checkpoint, device) once and hands the same started `realtime.scorer.Scorer` to every caller."""

    def __init__(self):
        self._lock = threading.Lock()
        self._scorers: dict[tuple[str, str], object] = {}

    def get(self, scorer_config, live_spec):
        from .scorer import Scorer

        key = (str(Path(scorer_config.checkpoint).resolve()), scorer_config.device)
        with self._lock:  # one load at a time; a second stream asking for the same model waits for it
            if key not in self._scorers:
                self._scorers[key] = Scorer(scorer_config, live_spec=live_spec).start()
            return self._scorers[key]


POOL = ScorerPool()
"""The page server's pool (one per process)."""


def gd_priors(cfg) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A model config's (`dmd_model.config.DMDConfig`) edge priors π: (HomoGD, HeteroGD), in EDGE_NAMES order."""
    return tuple(cfg.homo_gd.prior), tuple(cfg.hetero_gd.prior)


class BatchingScorer:
    """Args:
    scorer: a started `realtime.scorer.Scorer` (its ``max_batch`` bounds one pass), or a list of them: one worker
        thread each, all taking batches from the same queue. Torch releases the GIL inside its kernels, so on a
        machine with a core per worker the workers' forward passes run side by side (each scorer keeps its own
        resident buffers and lock; load them from the same checkpoint).
    max_wait_s: how long the first window of a batch waits for company (s); 5 ms adds little latency at 4 Hz.
    max_pending: submitted windows waiting to be scored; callers block beyond it (backpressure, nothing lost).
    """

    def __init__(self, scorer, max_wait_s: float = 0.005, max_pending: int = 8192):
        scorers = list(scorer) if isinstance(scorer, (list, tuple)) else [scorer]
        if not scorers:
            raise ValueError("BatchingScorer needs at least one scorer")
        self.scorers = scorers
        self.scorer = scorers[0]
        self.model = self.scorer.model
        self.max_wait_s = max_wait_s
        self.queue = BoundedQueue(max_pending, Policy.BLOCK, "batching")
        self.batches = 0
        self.windows = 0
        self._count = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(sc,), name=f"batching-scorer-{i}", daemon=True)
                         for i, sc in enumerate(scorers)]
        for t in self._threads:
            t.start()

    @property
    def last_ms(self) -> float:
        return self.scorer.last_ms

    @property
    def mean_batch(self) -> float:
        return self.windows / self.batches if self.batches else 0.0

    def score(self, snaps) -> list:
        """Thread-safe: score `snaps` together with other callers' windows; blocks until done."""
        futures = []
        for s in snaps:
            f: Future = Future()
            if not self.queue.put((s, f)):
                raise RuntimeError("the batching scorer is stopped")
            futures.append(f)
        return [f.result() for f in futures]

    def _run(self, scorer) -> None:
        cap = scorer.config.max_batch
        while True:
            try:
                first = self.queue.get()
            except Closed:
                return
            batch = [first]
            while len(batch) < cap:
                try:
                    batch.append(self.queue.get(timeout=self.max_wait_s if len(batch) == 1 else 0))
                except (Empty, Closed):
                    break
            try:
                results = scorer.score([s for s, _ in batch])
            except Exception as e:  # every caller of this batch gets the error, the thread goes on
                for _, f in batch:
                    f.set_exception(e)
                continue
            with self._count:
                self.batches += 1
                self.windows += len(batch)
            for (_, f), r in zip(batch, results):
                f.set_result(r)

    def stop(self, timeout: float = 1.0) -> None:
        self.queue.close()
        for t in self._threads:
            t.join(timeout)
