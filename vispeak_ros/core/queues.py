"""A bounded, thread-safe FIFO whose drop policy is explicit, so a slow consumer never blocks a producer.

ROS callbacks put into these queues; the single worker takes from them. `put` never blocks: when the queue is
full the policy decides which item is lost, and the loss is counted for diagnostics.
"""

from __future__ import annotations

import threading
from collections import deque
from enum import Enum
from typing import Generic, TypeVar

T = TypeVar("T")


class DropPolicy(Enum):
    DROP_OLDEST = "drop_oldest"  # live streams: the newest data wins, the stalest item is discarded
    DROP_NEWEST = "drop_newest"  # the incoming item is refused; what is queued is kept in order


class BoundedQueue(Generic[T]):
    def __init__(self, maxsize: int, policy: DropPolicy = DropPolicy.DROP_OLDEST) -> None:
        if maxsize < 1:
            raise ValueError(f"queue maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.policy = policy
        self.dropped = 0
        self.high_water = 0
        self._items: deque[T] = deque()
        self._ready = threading.Condition()

    def put(self, item: T) -> bool:
        """Add an item without blocking; returns False when the policy refused it."""
        with self._ready:
            if len(self._items) >= self.maxsize:
                self.dropped += 1
                if self.policy is DropPolicy.DROP_NEWEST:
                    return False
                self._items.popleft()
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._ready.notify()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """Take the oldest item, waiting up to `timeout` seconds; None when nothing arrived."""
        with self._ready:
            if not self._items and not self._ready.wait_for(lambda: bool(self._items), timeout):
                return None
            return self._items.popleft()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to `timeout` seconds until something is queued, without taking it; True when something is."""
        with self._ready:
            return self._ready.wait_for(lambda: bool(self._items), timeout)

    def drain(self) -> list[T]:
        """Take everything queued now, oldest first."""
        with self._ready:
            items = list(self._items)
            self._items.clear()
            return items

    def __len__(self) -> int:
        with self._ready:
            return len(self._items)
