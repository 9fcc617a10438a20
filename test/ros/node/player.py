"""Test peer: plays a rosbag2 recording into the graph in the ROS 2 wire format, with /clock (as `ros2 bag play
--clock` does), and paced by the node: the data of second k goes out only once the node has published its
informative score of second k - `lead` (or 20 s passed), and at most `rate` times real time, so a slow CI
machine drops no seconds and the node's best-effort sensor readers (keep last 5) drop no messages.

    python player.py RECORDING [--lead 2] [--until-s 60] [--rate 2]    prints one JSON line: counts per topic
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def play(recording: Path, lead: int, until_s: float, rate: float, namespace: str = "/vispeak") -> dict:
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    from vispeak_ros.core.clock import ns_to_stamp
    from vispeak_ros.ros import port
    from vispeak_ros.ros.adapters.dds_adapter import DdsNode, build_typestore

    reader = AnyReader([recording], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
    reader.open()
    flavour = "mgonzs13" if any(c.msgtype.endswith("/AudioStamped") for c in reader.connections) else "ros_drivers"
    node = DdsNode("player", typestore=build_typestore(audio_flavour=flavour))
    done = {"segment": -1}

    def on_informative(msg) -> None:
        done["segment"] = max(done["segment"], int(msg.segment_index))

    node.create_subscription("vispeak_ros/msg/Informative", f"{namespace}/informative", on_informative, port.DEFAULT)
    clock = node.create_publisher(port.CLOCK_TYPE, port.CLOCK_TOPIC, port.DEFAULT)
    publishers = {}
    for connection in reader.connections:
        qos = port.DEFAULT if connection.msgtype.endswith(("/String", "/AudioInfo")) else port.SENSOR_DATA
        if connection.msgtype.endswith("/AudioInfo"):
            qos = port.TRANSIENT_LOCAL_LATCHED
        publishers[connection.topic] = node.create_publisher(connection.msgtype, connection.topic, qos)
    node.spin_until(lambda: all(p.matched_subscriptions() for p in publishers.values()), 20.0)
    counts: dict[str, int] = {}
    start = None
    waited = -1  # the last second we waited for (once per second, however many messages it has)
    wall0 = time.monotonic()
    for connection, record_ns, raw in reader.messages():
        start = record_ns if start is None else start
        offset_s = (record_ns - start) / 1e9
        if offset_s > until_s:
            break
        second = int(offset_s)
        if second != waited:
            node.spin_until(lambda s=second: done["segment"] >= s - lead, 20.0)
            waited = second
            wall0 = time.monotonic() - offset_s / rate  # resume pacing from here after a wait
        delay = wall0 + offset_s / rate - time.monotonic()
        if delay > 0:
            node.spin_once(delay)
        sec, nanosec = ns_to_stamp(record_ns)
        clock.publish(
            node.new_message(
                port.CLOCK_TYPE, clock=node.new_message("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)
            )
        )
        publishers[connection.topic].publish_cdr(bytes(raw))
        counts[connection.topic] = counts.get(connection.topic, 0) + 1
    # Let the last seconds close: the clock runs on past the end.
    for step in range(30):
        sec, nanosec = ns_to_stamp(record_ns + step * 100_000_000)
        clock.publish(
            node.new_message(
                port.CLOCK_TYPE, clock=node.new_message("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)
            )
        )
        node.spin_once(0.05)
    reader.close()
    node.shutdown()
    return {"sent": counts, "last_segment_seen": done["segment"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("recording", type=Path)
    parser.add_argument("--lead", type=int, default=2)
    parser.add_argument("--until-s", type=float, default=1e9)
    parser.add_argument("--rate", type=float, default=2.0, help="at most this many times real time")
    args = parser.parse_args()
    print(json.dumps(play(args.recording, args.lead, args.until_s, args.rate)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
