"""Stream time: the robot's clock as stamped on incoming messages (or sim time in replay).

Times are integer nanoseconds everywhere in core, so that segment boundaries never drift with float error over
long streams. Wall time is used only for latency figures, never for what the model sees.
"""

from __future__ import annotations

from typing import Any

NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp: Any) -> int:
    """Nanoseconds of a builtin_interfaces/Time-like object (attributes `sec`, `nanosec`)."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> tuple[int, int]:
    """(sec, nanosec) for a builtin_interfaces/Time; nanosec is always in [0, 1e9)."""
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return sec, nanosec


def seconds_to_ns(seconds: float) -> int:
    return round(seconds * NS_PER_S)


def ns_to_seconds(ns: int) -> float:
    return ns / NS_PER_S


class StreamClock:
    """Maps stream time to one-second segments, anchored at the first stamp the stream shows.

    Segment k covers the half-open interval [anchor + k * length, anchor + (k + 1) * length).
    """

    def __init__(self, segment_length_ns: int = NS_PER_S) -> None:
        if segment_length_ns <= 0:
            raise ValueError(f"segment_length_ns must be > 0, got {segment_length_ns}")
        self.segment_length_ns = segment_length_ns
        self.anchor_ns: int | None = None

    @property
    def anchored(self) -> bool:
        return self.anchor_ns is not None

    def anchor(self, stamp_ns: int) -> None:
        """Fix the stream origin at the first stamp seen; later calls keep it."""
        if self.anchor_ns is None:
            self.anchor_ns = int(stamp_ns)

    def reset(self) -> None:
        self.anchor_ns = None

    def segment_of(self, stamp_ns: int) -> int:
        """Index of the segment a stamp falls in (negative before the anchor)."""
        return (int(stamp_ns) - self._origin()) // self.segment_length_ns

    def segment_start(self, index: int) -> int:
        return self._origin() + index * self.segment_length_ns

    def segment_end(self, index: int) -> int:
        return self.segment_start(index + 1)

    def _origin(self) -> int:
        if self.anchor_ns is None:
            raise RuntimeError("stream clock has no anchor yet: no stamped input has arrived")
        return self.anchor_ns
