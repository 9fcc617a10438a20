"""Stream time is integer nanoseconds, so segment boundaries do not drift over long streams."""

import pytest

from vispeak_ros.core.clock import NS_PER_S, StreamClock, ns_to_stamp, seconds_to_ns, stamp_to_ns


class Time:
    def __init__(self, sec, nanosec):
        self.sec, self.nanosec = sec, nanosec


def test_stamps_round_trip_through_nanoseconds():
    ns = stamp_to_ns(Time(1_700_000_000, 999_999_999))
    assert ns_to_stamp(ns) == (1_700_000_000, 999_999_999)
    assert ns_to_stamp(-1) == (-1, 999_999_999)


def test_segments_are_anchored_at_the_first_stamp_and_never_drift():
    clock = StreamClock()
    clock.anchor(1_700_000_000 * NS_PER_S + 123)
    clock.anchor(5)  # later anchors are ignored
    start = clock.segment_start(0)
    assert start == 1_700_000_000 * NS_PER_S + 123
    ten_hours = 36_000
    assert clock.segment_of(start + ten_hours * NS_PER_S) == ten_hours
    assert clock.segment_of(start + ten_hours * NS_PER_S - 1) == ten_hours - 1
    assert clock.segment_end(ten_hours) - clock.segment_start(ten_hours) == NS_PER_S
    assert clock.segment_of(start - 1) == -1
    assert seconds_to_ns(0.1) == 100_000_000


def test_an_unanchored_clock_says_why_it_cannot_answer():
    with pytest.raises(RuntimeError, match="no anchor yet"):
        StreamClock().segment_of(0)
