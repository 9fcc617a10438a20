"""A DDS peer process for the cross-process tests: publishes or subscribes the node's input streams.

    python dds_peer.py publish   --seed S --count N [--qos default|sensor_data] [--streams a,b]
    python dds_peer.py subscribe --count N [--qos ...] [--streams a,b] [--timeout T] [--until-qos-event]
    python dds_peer.py serve     --timeout T        (a std_srvs/Trigger service /peer/reset, counting calls)

Each run prints one JSON report as its last stdout line. Messages are built from the seed, so the test can check
independently that what arrived is what was sent. It runs in the environment the test gives it (an isolated
domain on loopback, see conftest.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dds_samples import random_message

from vispeak_ros.ros import port
from vispeak_ros.ros.adapters.dds_adapter import DdsNode, build_typestore

# stream -> (audio flavour of its type store, topic, type)
STREAMS = {
    "image": (None, "/camera/image_raw", "sensor_msgs/msg/Image"),
    "compressed": (None, "/camera/image_raw/compressed", "sensor_msgs/msg/CompressedImage"),
    "audio_ros_drivers": ("ros_drivers", "/mic/audio_stamped", "audio_common_msgs/msg/AudioDataStamped"),
    "audio_ros_drivers_raw": ("ros_drivers", "/mic/audio", "audio_common_msgs/msg/AudioData"),
    "audio_mgonzs13": ("mgonzs13", "/whisper/audio", "audio_common_msgs/msg/AudioStamped"),
}


def build(node: DdsNode, stream: str, seed: int, index: int) -> object:
    """The `index`-th message of a stream: random fields, and realistic payload sizes for the big ones."""
    _, _, ros_type = STREAMS[stream]
    rng = random.Random(f"{seed}:{stream}:{index}")
    msg = random_message(node.types, ros_type, rng, max_len=64)
    payload = np.random.default_rng(rng.getrandbits(32))
    if stream == "image":
        msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step = 480, 640, "rgb8", 0, 1920
        msg.data = payload.integers(0, 256, 640 * 480 * 3, dtype=np.uint8)
    elif stream == "compressed":
        msg.format = "jpeg"
        msg.data = payload.integers(0, 256, 40_000 + index, dtype=np.uint8)
    elif stream == "audio_ros_drivers":
        msg.audio.data = payload.integers(0, 256, 3200, dtype=np.uint8)  # 100 ms of 16 kHz S16LE
    elif stream == "audio_ros_drivers_raw":
        msg.data = payload.integers(0, 256, 3201, dtype=np.uint8)  # odd length: CDR padding
    elif stream == "audio_mgonzs13":
        msg.audio.audio_data.int16_data = payload.integers(-32768, 32768, 1600, dtype=np.int16)
    return msg


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def nodes_for(streams: list[str], role: str) -> dict[str | None, DdsNode]:
    """One node per type store: the two audio_common flavours cannot share one."""
    nodes: dict[str | None, DdsNode] = {}
    for stream in streams:
        flavour = STREAMS[stream][0]
        if flavour not in nodes:
            store = build_typestore(audio_flavour=flavour)
            nodes[flavour] = DdsNode(f"peer_{role}_{flavour or 'std'}", typestore=store)
    return nodes


def publish(args: argparse.Namespace) -> dict:
    streams = args.streams.split(",")
    nodes = nodes_for(streams, "pub")
    qos = port.qos_profile(args.qos)
    publishers = {s: nodes[STREAMS[s][0]].create_publisher(STREAMS[s][2], STREAMS[s][1], qos) for s in streams}
    deadline = time.monotonic() + args.match_timeout
    while any(p.matched_subscriptions() == 0 for p in publishers.values()) and time.monotonic() < deadline:
        time.sleep(0.02)
    matched = {s: p.matched_subscriptions() for s, p in publishers.items()}
    sent: dict[str, list[str]] = {s: [] for s in streams}
    for index in range(args.count):
        for stream, publisher in publishers.items():
            msg = build(publisher.node, stream, args.seed, index)
            sent[stream].append(digest(publisher.node.types.serialize(msg, publisher.msg_type)))
            publisher.publish(msg)
        time.sleep(args.interval)
    if qos.reliability is port.Reliability.RELIABLE:
        for publisher in publishers.values():
            publisher.writer.wait_for_acks(int(5e9))
    else:
        time.sleep(0.3)
    events = [e for node in nodes.values() for e in node.qos_events]
    for node in nodes.values():
        node.shutdown()
    return {"sent": sent, "matched": matched, "qos_events": events}


def subscribe(args: argparse.Namespace) -> dict:
    streams = args.streams.split(",")
    nodes = nodes_for(streams, "sub")
    qos = port.qos_profile(args.qos)
    received: dict[str, list[str]] = {s: [] for s in streams}
    summary: dict[str, list] = {s: [] for s in streams}

    def callback(stream: str, node: DdsNode, ros_type: str):
        def on_message(msg: object) -> None:
            received[stream].append(digest(node.types.serialize(msg, ros_type)))
            if stream == "image":
                summary[stream].append([msg.height, msg.width, msg.encoding, int(msg.data.size)])

        return on_message

    for stream in streams:
        flavour, topic, ros_type = STREAMS[stream]
        node = nodes[flavour]
        node.create_subscription(ros_type, topic, callback(stream, node, ros_type), qos)
    print("ready", flush=True)
    deadline = time.monotonic() + args.timeout
    event_seen_at: float | None = None
    while time.monotonic() < deadline:
        for node in nodes.values():
            node.spin_once(0.02)
        if all(len(received[s]) >= args.count for s in streams):
            break
        if args.until_qos_event and any(node.qos_events for node in nodes.values()):
            event_seen_at = event_seen_at or time.monotonic()
            if time.monotonic() - event_seen_at > args.grace:
                break
    events = [e for node in nodes.values() for e in node.qos_events]
    for node in nodes.values():
        node.shutdown()
    return {"received": received, "summary": summary, "qos_events": events}


def serve(args: argparse.Namespace) -> dict:
    node = DdsNode("peer_service")
    calls = []

    def reset(_request: object, response: object) -> object:
        calls.append(time.monotonic())
        response.success = True
        response.message = f"reset #{len(calls)}"
        return response

    node.create_service("std_srvs/srv/Trigger", "/peer/reset", reset)
    print("ready", flush=True)
    node.spin_until(lambda: len(calls) >= args.count, args.timeout)
    node.spin_until(lambda: False, 0.3)  # let the last reply go out
    node.shutdown()
    return {"calls": len(calls)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["publish", "subscribe", "serve"])
    parser.add_argument("--streams", default=",".join(STREAMS))
    parser.add_argument("--qos", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--match-timeout", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--until-qos-event", action="store_true")
    parser.add_argument("--grace", type=float, default=1.0)
    args = parser.parse_args(argv)
    report = {"publish": publish, "subscribe": subscribe, "serve": serve}[args.mode](args)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
