"""Cyclone DDS adapter across processes: 640x480 rgb8 at 30 Hz plus 16 kHz audio, latency and drops.

`run(quick)` starts a subscriber process and a publisher process (`python -m benchmarks.dds --role ...`) in an
isolated loopback domain (vispeak_ros.ros.isolation), never on the caller's ROS graph. The publisher stamps each
message with the wall clock just before it serialises and writes it; the subscriber takes the difference when its
callback runs (after deserialisation), so a latency covers serialise + DDS + take + deserialise + dispatch.
QoS are the ones the node meets in practice: images SensorDataQoS (best effort, depth 5), audio as audio_capture
publishes it (reliable, depth 10, ros_drivers AudioDataStamped, 20 ms chunks of S16LE = 640 bytes at 50 Hz).
Goal: no drops, p99 < 10 ms.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

DESCRIPTION = "DDS adapter across processes: 640x480 rgb8 at 30 Hz + 16 kHz audio; dropped, p50/p99 latency"

IMAGE_TOPIC, IMAGE_TYPE, IMAGE_HZ = "/camera/image_raw", "sensor_msgs/msg/Image", 30.0
AUDIO_TOPIC, AUDIO_TYPE, AUDIO_HZ = "/audio/audio_stamped", "audio_common_msgs/msg/AudioDataStamped", 50.0
AUDIO_FLAVOUR = "ros_drivers"
ROOT = Path(__file__).resolve().parent.parent


def _node(name: str):
    from vispeak_ros.ros.adapters.dds_adapter import DdsNode, build_typestore

    return DdsNode(name, typestore=build_typestore(audio_flavour=AUDIO_FLAVOUR))


def publisher(duration_s: float) -> dict:
    import numpy as np

    from vispeak_ros.ros import port

    node = _node("bench_pub")
    images = node.create_publisher(IMAGE_TYPE, IMAGE_TOPIC, port.SENSOR_DATA)
    audio = node.create_publisher(AUDIO_TYPE, AUDIO_TOPIC, port.DEFAULT)
    deadline = time.monotonic() + 20
    while (images.matched_subscriptions() == 0 or audio.matched_subscriptions() == 0) and time.monotonic() < deadline:
        time.sleep(0.02)
    if images.matched_subscriptions() == 0 or audio.matched_subscriptions() == 0:
        raise RuntimeError("benchmarks.dds: the subscriber process was not discovered within 20 s")
    rng = np.random.default_rng(0)
    frame = node.new_message(
        IMAGE_TYPE, height=480, width=640, encoding="rgb8", step=1920, data=rng.integers(0, 256, 921600, np.uint8)
    )
    chunk = node.new_message(AUDIO_TYPE)
    chunk.audio.data = rng.integers(0, 256, 640, np.uint8)
    sent = {"image": 0, "audio": 0}
    start = time.monotonic() + 0.5
    next_due = {"image": start, "audio": start}
    periods = {"image": 1.0 / IMAGE_HZ, "audio": 1.0 / AUDIO_HZ}
    end = start + duration_s
    while True:
        stream = min(next_due, key=next_due.get)
        due = next_due[stream]
        if due >= end:
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        msg, pub = (frame, images) if stream == "image" else (chunk, audio)
        msg.header.frame_id = str(sent[stream])
        now = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
        pub.publish(msg)
        sent[stream] += 1
        next_due[stream] = due + periods[stream]
    audio.writer.wait_for_acks(int(5e9))
    time.sleep(0.5)
    node.shutdown()
    return {"sent": sent}


def subscriber(duration_s: float, stop) -> dict:
    """Receive until `stop` (a threading.Event) is set, at most `duration_s` + 25 s."""
    from vispeak_ros.ros import port

    node = _node("bench_sub")
    latencies: dict[str, list[float]] = {"image": [], "audio": []}
    seen: dict[str, set[int]] = {"image": set(), "audio": set()}

    def on(stream: str):
        def callback(msg) -> None:
            now = time.time_ns()
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            latencies[stream].append((now - stamp) / 1e6)
            seen[stream].add(int(msg.header.frame_id))

        return callback

    node.create_subscription(IMAGE_TYPE, IMAGE_TOPIC, on("image"), port.SENSOR_DATA)
    node.create_subscription(AUDIO_TYPE, AUDIO_TOPIC, on("audio"), port.DEFAULT)
    print("ready", flush=True)
    node.spin_until(stop.is_set, duration_s + 25)  # the parent stops us once the publisher is done
    node.shutdown()
    return {"latencies_ms": latencies, "seen": {k: len(v) for k, v in seen.items()}}


def _spawn(role: str, duration_s: float, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.dds", "--role", role, "--duration", str(duration_s)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _report(process: subprocess.Popen, timeout: float) -> dict:
    out, err = process.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if process.returncode not in (0, -15) or not lines:
        raise RuntimeError(f"benchmarks.dds: {process.args[3:]} failed ({process.returncode}):\n{err[-3000:]}")
    return json.loads(lines[-1])


def run(quick: bool) -> dict:
    import numpy as np

    from vispeak_ros.ros.isolation import isolated_env

    duration = 10.0 if quick else 60.0
    env = isolated_env()
    env["PYTHONPATH"] = str(ROOT) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    sub = _spawn("subscriber", duration, env)
    try:
        if sub.stdout.readline().strip() != "ready":
            raise RuntimeError(f"benchmarks.dds: subscriber did not start:\n{sub.stderr.read()[-3000:]}")
        pub = _spawn("publisher", duration, env)
        sent = _report(pub, duration + 60)["sent"]
        time.sleep(0.5)
        sub.stdin.write("stop\n")
        sub.stdin.flush()
        got = _report(sub, 30)
    finally:
        for process in (sub,):
            if process.poll() is None:
                process.kill()
    image = np.array(got["latencies_ms"]["image"])
    audio = np.array(got["latencies_ms"]["audio"])
    both = np.concatenate([image, audio])
    dropped = (sent["image"] - got["seen"]["image"]) + (sent["audio"] - got["seen"]["audio"])
    return {
        "dropped": int(dropped),
        "p50_ms": float(np.percentile(both, 50)),
        "p99_ms": float(np.percentile(both, 99)),
        "image_p50_ms": float(np.percentile(image, 50)),
        "image_p99_ms": float(np.percentile(image, 99)),
        "audio_p99_ms": float(np.percentile(audio, 99)),
        "max_ms": float(both.max()),
        "frames": f"{got['seen']['image']}/{sent['image']}",
        "chunks": f"{got['seen']['audio']}/{sent['audio']}",
        "seconds": duration,
    }


def _main() -> int:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--role", choices=["publisher", "subscriber"], required=True)
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args()
    if args.role == "publisher":
        print(json.dumps(publisher(args.duration)), flush=True)
        return 0
    import threading

    # The parent writes a line on stdin once the publisher has finished: then stop and report.
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    print(json.dumps(subscriber(args.duration, stop)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
