"""Bounded queues with a declared overflow policy, and drop counters.

Policies:
    ``block``: the producer waits (file replay: nothing may be lost, the source slows down instead).
    ``drop_oldest``: the oldest item is dropped and counted (live audio: the queue never grows, and loss is
        visible in the drop counter, never silent).
    ``latest``: a one-slot mailbox that keeps only the newest item (live video: a slow face stage sees the newest
        frame, not a backlog; the replaced frames are counted as drops).
"""

from __future__ import annotations

import collections
import threading
from enum import Enum


class Policy(str, Enum):
    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    LATEST = "latest"


class Closed(Exception):
    """The queue was closed and is empty."""


class Empty(Exception):
    """No item within the timeout."""


class BoundedQueue:
    """A thread-safe bounded FIFO with an overflow `Policy`.

    Args:
        maxsize: capacity (forced to 1 for ``latest``).
        policy: what `put` does when full.
        name: shown in metrics.
    """

    def __init__(self, maxsize: int, policy: Policy | str = Policy.BLOCK, name: str = "queue"):
        self.policy = Policy(policy)
        self.maxsize = 1 if self.policy is Policy.LATEST else max(1, int(maxsize))
        self.name = name
        self._items: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._closed = False
        self.drops = 0
        self.puts = 0

    def put(self, item, timeout: float | None = None) -> bool:
        """Add an item. Returns False if the queue is closed (or, for ``block``, the timeout passed)."""
        with self._lock:
            if self._closed:
                return False
            if len(self._items) >= self.maxsize:
                if self.policy is Policy.BLOCK:
                    if not self._not_full.wait_for(lambda: len(self._items) < self.maxsize or self._closed, timeout):
                        return False
                    if self._closed:
                        return False
                else:
                    self._items.popleft()
                    self.drops += 1
            self._items.append(item)
            self.puts += 1
            self._not_empty.notify()
            return True

    def stop_blocking(self) -> None:
        """From now on drop the oldest item instead of blocking (its consumer is stalled: the producer goes on and
        the loss is counted). The one policy change a queue allows after it is built."""
        with self._lock:
            if self.policy is Policy.BLOCK:
                self.policy = Policy.DROP_OLDEST
            self._not_full.notify_all()

    def put_control(self, item) -> None:
        """Add a control item (end of stream) even when full, never dropping it."""
        with self._lock:
            self._items.append(item)
            self._not_empty.notify()

    def get(self, timeout: float | None = None):
        """Next item; raises `Empty` after `timeout`, or `Closed` once closed and drained."""
        with self._lock:
            if not self._not_empty.wait_for(lambda: self._items or self._closed, timeout):
                raise Empty
            if not self._items:
                raise Closed
            item = self._items.popleft()
            self._not_full.notify()
            return item

    def take_while(self, pred) -> list:
        """Remove and return the items at the head of the queue for which ``pred`` holds, without waiting (a
        consumer that catches up on a backlog in one go)."""
        out = []
        with self._lock:
            while self._items and pred(self._items[0]):
                out.append(self._items.popleft())
            if out:
                self._not_full.notify_all()
        return out

    def close(self) -> None:
        """Wake every waiting producer and consumer; later puts are refused."""
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def stats(self) -> dict:
        return {"size": len(self), "capacity": self.maxsize, "drops": self.drops, "policy": self.policy.value}


POLL_S = 0.1
"""How often a consumer waiting on an empty queue looks at its stop event (s): a stop is seen within 0.1 s."""


def consume(q: BoundedQueue, stop, poll_s: float = POLL_S, idle: bool = False):
    """The one consumer loop: yields ``q``'s items until ``stop`` is set or the queue is closed and drained.

    With ``idle=True`` it also yields None each time ``poll_s`` passes with nothing, for a consumer that has
    periodic work of its own (the scorer's stall check)."""
    while not stop.is_set():
        try:
            item = q.get(timeout=poll_s)
        except Empty:
            if idle:
                yield None
            continue
        except Closed:
            return
        yield item
