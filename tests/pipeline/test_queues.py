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


def test_a_live_transcript_stage_catches_up_on_waiting_audio_in_one_push():
    """`StageThread(coalesce=True)`: the audio waiting in the inbox that continues a chunk is pushed with it as one
    chunk (one Whisper call for the backlog); a gap, or anything else, ends the merge."""
    import numpy as np
    from fakes import FakeCore, wait_until

    from realtime.packets import AudioChunk, EndOfStream
    from realtime.stages import StageThread

    class Recording(FakeCore):
        def __init__(self):
            super().__init__("transcript")
            self.seen = []

        def push(self, p):
            self.seen.append((round(p.t, 3), len(p.samples), p.t_mono))
            return super().push(p)

    def chunk(t, mono):
        return AudioChunk(t=t, t_mono=mono, samples=np.zeros(1600, np.float32))  # 0.1 s

    inbox, core = BoundedQueue(16), Recording()
    for c in (chunk(0.0, 1.0), chunk(0.1, 2.0), chunk(0.2, 3.0), chunk(0.5, 4.0), chunk(0.6, 5.0)):
        inbox.put(c)
    inbox.put_control(EndOfStream(0.7))
    th = StageThread(core, inbox, lambda _: None, threading.Event(), coalesce=True)
    th.start()
    assert wait_until(lambda: th.stats.status == "finished", 5)
    # 0.0-0.3 s in one push (stamped with the newest chunk's capture), then the stretch after the gap
    assert core.seen == [(0.0, 4800, 3.0), (0.5, 3200, 5.0)]
    assert th.stats.packets == 2


def test_take_while_stops_at_the_first_item_that_does_not_match():
    q = BoundedQueue(8)
    for x in (1, 2, 5, 3):
        q.put(x)
    assert q.take_while(lambda x: x < 4) == [1, 2] and len(q) == 2
    assert q.take_while(lambda x: x < 4) == [] and q.get(0) == 5
