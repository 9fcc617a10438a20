"""Test peers as their own processes, so a test can kill them as a crash would (SIGKILL) or freeze them (SIGSTOP).

python peer.py camera [--offset-s S] [--fps 10]   publish rgb8 frames stamped with the wall clock plus S;
                                                  prints "first <stamp_ns>" once the first frame went out
python peer.py speech [--namespace /vispeak]      print each sentence of ~/speech, one a line
"""

from __future__ import annotations

import argparse
import sys
import time

NS = 1_000_000_000


def camera(offset_s: float, fps: float) -> None:
    import numpy as np

    from vispeak_ros.ros import port
    from vispeak_ros.ros.adapters.dds_adapter import DdsNode

    node = DdsNode("camera")
    pub = node.create_publisher("sensor_msgs/msg/Image", "/camera/image_raw", port.SENSOR_DATA)
    node.spin_until(lambda: pub.matched_subscriptions() > 0, 30.0)
    rng = np.random.default_rng(0)
    first = True
    while True:
        stamp = time.time_ns() + round(offset_s * NS)
        header = node.new_message("std_msgs/msg/Header", frame_id="camera", stamp=node.new_message(
            "builtin_interfaces/msg/Time", sec=stamp // NS, nanosec=stamp % NS))  # fmt: skip
        pixels = rng.integers(0, 255, 48 * 64 * 3, dtype=np.uint8)
        pub.publish(node.new_message("sensor_msgs/msg/Image", header=header, height=48, width=64, encoding="rgb8",
                                     step=64 * 3, data=pixels))  # fmt: skip
        if first:
            print(f"first {stamp}", flush=True)
            first = False
        node.spin_once(1.0 / fps)


def speech(namespace: str) -> None:
    from vispeak_ros.ros import port
    from vispeak_ros.ros.adapters.dds_adapter import DdsNode

    node = DdsNode("tts")
    node.create_subscription("std_msgs/msg/String", f"{namespace}/speech", lambda m: print(m.data, flush=True),
                             port.DEFAULT)  # fmt: skip
    print("ready", flush=True)
    node.spin()


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="role", required=True)
    cam = sub.add_parser("camera")
    cam.add_argument("--offset-s", type=float, default=0.0)
    cam.add_argument("--fps", type=float, default=10.0)
    tts = sub.add_parser("speech")
    tts.add_argument("--namespace", default="/vispeak")
    args = parser.parse_args()
    if args.role == "camera":
        camera(args.offset_s, args.fps)
    else:
        speech(args.namespace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
