"""Runtime outputs -> ROS messages, built through the graph port so both adapters get their native objects.

Stamps are stream time (the sensors' clock), as the runtime made them; `latency_s` is the only wall-clock figure.
"""

from __future__ import annotations

from typing import Any

from vispeak_ros.core.clock import ns_to_stamp
from vispeak_ros.core.session_state import SessionState
from vispeak_ros.ros.port import GraphPort
from vispeak_ros.ros.safety import StopSnapshot
from vispeak_ros.runtime.outputs import FeedbackChunk, FinalAnswer, InformativeRecord

FEEDBACK = "vispeak_ros/msg/Feedback"
EVENT = "vispeak_ros/msg/Event"
INFORMATIVE = "vispeak_ros/msg/Informative"
STATE = "vispeak_ros/msg/State"
STRING = "std_msgs/msg/String"
EMPTY = "std_msgs/msg/Empty"
BOOL = "std_msgs/msg/Bool"
TWIST = "geometry_msgs/msg/Twist"
TWIST_STAMPED = "geometry_msgs/msg/TwistStamped"
TRIGGER_SRV = "std_srvs/srv/Trigger"

# State.msg constants, in the order of its definition.
STATE_CODES: dict[SessionState, int] = {
    SessionState.IDLE: 0,
    SessionState.AWAKE: 1,
    SessionState.RESPONDING: 2,
    SessionState.INTERRUPTED: 3,
    SessionState.TERMINATED: 4,
}


def time_msg(port: GraphPort, ns: int) -> Any:
    sec, nanosec = ns_to_stamp(ns)
    return port.new_message("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)


def header(port: GraphPort, ns: int, frame_id: str) -> Any:
    return port.new_message("std_msgs/msg/Header", stamp=time_msg(port, ns), frame_id=frame_id)


def feedback(port: GraphPort, output: FeedbackChunk | FinalAnswer, latency_s: float, frame_id: str) -> Any:
    """A sentence chunk (partial=true) or the final whole answer (partial=false)."""
    chunk = isinstance(output, FeedbackChunk)
    return port.new_message(
        FEEDBACK,
        header=header(port, output.stamp_ns, frame_id),
        text=output.text,
        partial=chunk,
        answer_id=output.answer_id,
        trigger=int(output.trigger),
        segment_index=output.answer_segment_index,
        trigger_stamp=time_msg(port, output.answer_stamp_ns),
        informative_score=float((output.informative or 0.0) if chunk else 0.0),
        latency_s=float(latency_s),
    )


def event(port: GraphPort, ev: Any, frame_id: str) -> Any:
    """A typed event (core.events.Event)."""
    return port.new_message(
        EVENT,
        header=header(port, ev.stamp_ns, frame_id),
        type=int(ev.behaviour),
        confidence=float(ev.confidence),
        text=ev.text,
        answer_id=ev.answer_id,
        segment_index=ev.segment_index,
    )


def informative(port: GraphPort, record: InformativeRecord, frame_id: str) -> Any:
    return port.new_message(
        INFORMATIVE,
        header=header(port, record.stamp_ns, frame_id),
        segment_index=record.segment_index,
        probability=float(record.probability),
        running_sum=float(record.running_sum),
        threshold=float(record.threshold),
        triggered=bool(record.triggered),
    )


def state(port: GraphPort, session: SessionState, stop: StopSnapshot, active: bool, now_ns: int, frame_id: str) -> Any:
    return port.new_message(
        STATE,
        header=header(port, now_ns, frame_id),
        session_state=STATE_CODES[session],
        stop_active=stop.active,
        stop_reason=stop.reason,
        stop_since=time_msg(port, stop.since_ns),
        fault=stop.fault,
        active=active,
    )


def zero_twist(port: GraphPort, stamped: bool, now_ns: int, frame_id: str) -> Any:
    """All-zero velocities (the defaults), stamped when the mux input expects TwistStamped."""
    twist = port.new_message(TWIST)
    if not stamped:
        return twist
    return port.new_message(TWIST_STAMPED, header=header(port, now_ns, frame_id), twist=twist)
