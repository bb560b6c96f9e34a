import threading
import time
from types import SimpleNamespace

import pytest

from realtime.batching import BatchingScorer


class EchoScorer:
    """Returns each window's own id, and records the batch sizes it was given."""

    def __init__(self):
        self.config = SimpleNamespace(max_batch=8)
        self.model = object()
        self.last_ms = 0.0
        self.sizes = []

    def score(self, snaps):
        self.sizes.append(len(snaps))
        time.sleep(0.01)
        if any(s == "boom" for s in snaps):
            raise ValueError("bad window")
        return [f"result-{s}" for s in snaps]


def test_concurrent_callers_get_their_own_results_in_shared_batches():
    """Twelve callers of two windows each. The first pass is held until every other window is queued, so what
    follows is deterministic whatever the machine's load: full batches of ``max_batch`` (8), then the rest."""
    inner = EchoScorer()
    gate, first_pass = threading.Event(), threading.Event()
    plain = inner.score
    held = []

    def held_first(snaps):
        if not first_pass.is_set():
            held.append(len(snaps))
            first_pass.set()
            gate.wait(5)
        return plain(snaps)

    inner.score = held_first
    b = BatchingScorer(inner, max_wait_s=0.02)
    out = {}

    def call(k):
        out[k] = b.score([f"{k}a", f"{k}b"])

    threads = [threading.Thread(target=call, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while not (first_pass.is_set() and len(b.queue) + held[0] == 24):
        assert time.monotonic() < deadline, "the callers never queued their windows"
        time.sleep(0.005)
    gate.set()
    for t in threads:
        t.join(5)
    b.stop()
    assert out == {k: [f"result-{k}a", f"result-{k}b"] for k in range(12)}
    rest = 24 - inner.sizes[0]
    assert inner.sizes[1:] == [8] * (rest // 8) + ([rest % 8] if rest % 8 else [])  # really batched, in full passes
    assert b.windows == 24


def test_an_error_reaches_only_that_batch_and_the_scorer_goes_on():
    b = BatchingScorer(EchoScorer(), max_wait_s=0.0)
    with pytest.raises(ValueError, match="bad window"):
        b.score(["boom"])
    assert b.score(["ok"]) == ["result-ok"]
    b.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        b.score(["late"])


def test_two_workers_score_side_by_side_and_each_caller_gets_its_own_results():
    """Two scorers behind one queue: while the first is held inside a pass, the second takes the next batch (so
    the passes overlap), and every caller still gets exactly its own results."""
    first, second = EchoScorer(), EchoScorer()
    inside, release = threading.Event(), threading.Event()
    plain = first.score

    def held(snaps):
        inside.set()
        release.wait(5)
        return plain(snaps)

    first.score = held
    b = BatchingScorer([first, second], max_wait_s=0.0)
    out = {}

    def call(k):
        out[k] = b.score([f"{k}"])

    t0 = threading.Thread(target=call, args=(0,))
    t0.start()
    assert inside.wait(5)  # worker 0 is busy with caller 0's window
    others = [threading.Thread(target=call, args=(k,)) for k in range(1, 6)]
    for t in others:
        t.start()
    for t in others:
        t.join(5)
    assert {k: out.get(k) for k in range(1, 6)} == {k: [f"result-{k}"] for k in range(1, 6)}  # all by worker 1
    assert 0 not in out and sum(second.sizes) == 5
    release.set()
    t0.join(5)
    b.stop()
    assert out[0] == ["result-0"] and b.windows == 6
    with pytest.raises(ValueError, match="at least one"):
        BatchingScorer([])
