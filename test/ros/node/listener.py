"""Test peer: an independent subscriber of everything the vispeak node publishes, until its stdin closes; then
one JSON line with what it received (arrival times are wall-clock seconds, for the heartbeat checks).

    python listener.py [--namespace /vispeak]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time


def listen(namespace: str) -> dict:
    from vispeak_ros.ros import port
    from vispeak_ros.ros.adapters.dds_adapter import DdsNode, build_typestore

    node = DdsNode("listener", typestore=build_typestore())
    got: dict[str, list] = {k: [] for k in ("feedback", "events", "speech", "speech_cancel", "lock", "state")}

    def stamp(t) -> float:
        return t.sec + t.nanosec * 1e-9

    def sub(msg_type: str, name: str, key: str, convert, qos=port.DEFAULT) -> None:
        node.create_subscription(msg_type, f"{namespace}/{name}", lambda m: got[key].append(convert(m)), qos)

    sub(
        "vispeak_ros/msg/Feedback",
        "feedback",
        "feedback",
        lambda m: {
            "text": m.text,
            "partial": bool(m.partial),
            "answer_id": m.answer_id,
            "trigger": m.trigger,
            "segment_index": m.segment_index,
            "stamp": stamp(m.header.stamp),
            "trigger_stamp": stamp(m.trigger_stamp),
        },
    )
    sub(
        "vispeak_ros/msg/Event",
        "events",
        "events",
        lambda m: {"type": m.type, "text": m.text, "answer_id": m.answer_id, "stamp": stamp(m.header.stamp)},
    )
    sub("std_msgs/msg/String", "speech", "speech", lambda m: m.data)
    sub("std_msgs/msg/Empty", "speech_cancel", "speech_cancel", lambda m: time.time())
    sub("std_msgs/msg/Bool", "stop_lock", "lock", lambda m: [time.time(), bool(m.data)])
    sub(
        "vispeak_ros/msg/State",
        "state",
        "state",
        lambda m: {
            "session_state": m.session_state,
            "stop_active": bool(m.stop_active),
            "stop_reason": m.stop_reason,
            "fault": bool(m.fault),
            "active": bool(m.active),
        },
        port.TRANSIENT_LOCAL_LATCHED,
    )
    spinner = threading.Thread(target=node.spin, daemon=True)
    spinner.start()
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    node.shutdown()
    spinner.join(5)
    return got


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namespace", default="/vispeak")
    args = parser.parse_args()
    print(json.dumps(listen(args.namespace)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
