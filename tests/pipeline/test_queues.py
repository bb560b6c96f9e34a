import threading
import time

import pytest

from realtime.queues import BoundedQueue, Closed, Empty, Policy


def test_drop_oldest_keeps_newest_and_counts():
    q = BoundedQueue(3, Policy.DROP_OLDEST)
    for i in range(5):
        assert q.put(i)
    assert q.drops == 2
    assert [q.get(0), q.get(0), q.get(0)] == [2, 3, 4]


def test_latest_is_a_one_slot_mailbox():
    q = BoundedQueue(10, Policy.LATEST)
    for i in range(4):
        q.put(i)
    assert q.maxsize == 1 and q.drops == 3 and q.get(0) == 3
    with pytest.raises(Empty):
        q.get(0.01)


def test_block_waits_for_room_and_times_out():
    q = BoundedQueue(1, Policy.BLOCK)
    assert q.put("a")
    t0 = time.monotonic()
    assert not q.put("b", timeout=0.05)  # full: refused after the timeout, nothing dropped
    assert time.monotonic() - t0 >= 0.05 and q.drops == 0
    threading.Timer(0.05, q.get).start()
    assert q.put("c", timeout=2.0)
    assert q.get(0) == "c"


def test_close_wakes_blocked_consumers_and_producers():
    q = BoundedQueue(1, Policy.BLOCK)
    q.put(1)
    out = []
    prod = threading.Thread(target=lambda: out.append(q.put(2, timeout=10)))
    prod.start()
    time.sleep(0.05)
    q.close()
    prod.join(1)
    assert out == [False] and not prod.is_alive()
    assert q.get(0) == 1  # what was queued can still be drained
    with pytest.raises(Closed):
        q.get(1)


def test_control_items_are_never_dropped():
    q = BoundedQueue(1, Policy.LATEST)
    q.put("frame")
    q.put_control("END")
    assert [q.get(0), q.get(0)] == ["frame", "END"]
