"""Bounded queues never block the producer; what they lose is decided by their policy and counted."""

import threading

import pytest

from vispeak_ros.core.queues import BoundedQueue, DropPolicy


def test_drop_oldest_keeps_the_newest_items():
    queue = BoundedQueue(3, DropPolicy.DROP_OLDEST)
    accepted = [queue.put(i) for i in range(5)]
    assert accepted == [True] * 5
    assert queue.drain() == [2, 3, 4]
    assert queue.dropped == 2 and queue.high_water == 3


def test_drop_newest_refuses_incoming_items():
    queue = BoundedQueue(2, DropPolicy.DROP_NEWEST)
    assert [queue.put(i) for i in range(4)] == [True, True, False, False]
    assert queue.drain() == [0, 1]
    assert queue.dropped == 2


def test_get_waits_for_a_producer_thread_and_times_out_when_none_comes():
    queue = BoundedQueue(1)
    assert queue.get(timeout=0.01) is None
    threading.Timer(0.05, queue.put, args=("segment",)).start()
    assert queue.get(timeout=5.0) == "segment"


def test_a_queue_needs_room_for_one_item():
    with pytest.raises(ValueError, match="maxsize must be >= 1"):
        BoundedQueue(0)
