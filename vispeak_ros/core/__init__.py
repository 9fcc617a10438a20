"""Core layer: stream time, segmenting, session state, events and bounded queues.

Needs numpy only (the streaming resampler imports soxr when it is constructed). No ROS, no torch: everything
here is plain data and logic, shared by the node, bag replay, the demo and evaluation.
"""

from vispeak_ros.core.clock import NS_PER_S, StreamClock, ns_to_seconds, seconds_to_ns, stamp_to_ns
from vispeak_ros.core.events import Behaviour, Event, Trigger
from vispeak_ros.core.queues import BoundedQueue, DropPolicy
from vispeak_ros.core.segmenter import FramePolicy, Segment, Segmenter, SegmenterConfig, SegmenterStats
from vispeak_ros.core.session_state import InvalidTransition, SessionMachine, SessionState, Transition

__all__ = [
    "NS_PER_S",
    "Behaviour",
    "BoundedQueue",
    "DropPolicy",
    "Event",
    "FramePolicy",
    "InvalidTransition",
    "Segment",
    "Segmenter",
    "SegmenterConfig",
    "SegmenterStats",
    "SessionMachine",
    "SessionState",
    "StreamClock",
    "Transition",
    "Trigger",
    "ns_to_seconds",
    "seconds_to_ns",
    "stamp_to_ns",
]
