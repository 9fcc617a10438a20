"""The vispeak node over Cyclone DDS (own process, demo model) fed 30 fps raw 640x480 frames + 16 kHz audio:
stream-seconds per wall-second, and frame-in to feedback-out latency.

A player in this process publishes each stream second (30 Image messages, 16 AudioStamped chunks of 1000 samples)
with /clock, as fast as the node takes them: second k goes out once the node has scored second k - 2 (its
~/informative), so nothing is dropped and the figure is the node's own speed. Latency: wall time from publishing
the last input of a second to receiving the first feedback chunk that second produced. Loopback only, random
domain. `python -m benchmarks node [--quick]`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DESCRIPTION = "node over DDS, 30 fps + 16 kHz: stream_x_realtime, feedback_latency_ms_p99"
REPO_ROOT = Path(__file__).resolve().parents[1]
FPS = 30
CHUNK = 1000  # audio samples per message (16 per second)
LEAD = 2


def _frames_per_second(seconds: int) -> list[np.ndarray]:
    """One 640x480 RGB frame per stream second from the bundled demo recording (the person acts in them)."""
    import cv2

    from vispeak_ros import data
    from vispeak_ros.tools.bag_source import read_segments

    frames = []
    for segment in read_segments(data.demo_recording()):
        if segment.frame is not None:
            frames.append(cv2.resize(segment.frame, (640, 480)))
        if len(frames) == seconds:
            break
    return frames


def run(quick: bool = False) -> dict:
    from vispeak_ros.core.clock import ns_to_stamp
    from vispeak_ros.ros import port
    from vispeak_ros.ros.adapters.dds_adapter import DdsNode, build_typestore
    from vispeak_ros.ros.isolation import ROS_GRAPH_VARIABLES, isolated_env

    seconds = 20 if quick else 60
    frames = _frames_per_second(seconds)
    env = isolated_env()
    for name in ROS_GRAPH_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(env)
    child_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    node = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "scripts" / "vispeak-node"), "--transport", "dds", "--ros-args",
         "-p", "use_sim_time:=true", "-p", "mute_audio_while_speaking:=false"],
        env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    player = DdsNode("bench_player", typestore=build_typestore(audio_flavour="mgonzs13"))
    scored = {"segment": -1}
    first_feedback: dict[int, float] = {}

    def on_informative(msg) -> None:
        scored["segment"] = max(scored["segment"], int(msg.segment_index))

    def on_feedback(msg) -> None:
        first_feedback.setdefault(int(msg.header.stamp.sec), time.monotonic())

    player.create_subscription("vispeak_ros/msg/Informative", "/vispeak/informative", on_informative, port.DEFAULT)
    player.create_subscription("vispeak_ros/msg/Feedback", "/vispeak/feedback", on_feedback, port.DEFAULT)
    camera = player.create_publisher("sensor_msgs/msg/Image", "/camera/image_raw", port.SENSOR_DATA)
    audio = player.create_publisher("audio_common_msgs/msg/AudioStamped", "/audio", port.SENSOR_DATA)
    clock = player.create_publisher(port.CLOCK_TYPE, port.CLOCK_TOPIC, port.DEFAULT)
    new = player.new_message
    try:
        if not player.spin_until(lambda: camera.matched_subscriptions() and audio.matched_subscriptions(), 120.0):
            raise RuntimeError(f"the node did not come up: {node.stderr.read() if node.poll() is not None else ''}")
        rng = np.random.default_rng(0)
        origin_ns = 1_700_000_000 * 1_000_000_000
        published_at: dict[int, float] = {}
        started = time.monotonic()
        for second, frame in enumerate(frames):
            player.spin_until(lambda s=second: scored["segment"] >= s - LEAD, 30.0)
            flat = frame.reshape(-1)
            events = [(i / FPS, "frame") for i in range(FPS)] + [(i * CHUNK / 16000, "audio") for i in range(16)]
            for offset, kind in sorted(events):
                stamp = origin_ns + round((second + offset) * 1e9)
                sec, nanosec = ns_to_stamp(stamp)
                time_msg = new("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)
                clock.publish(new(port.CLOCK_TYPE, clock=time_msg))
                header = new("std_msgs/msg/Header", stamp=time_msg, frame_id="camera")
                if kind == "frame":
                    camera.publish(new("sensor_msgs/msg/Image", header=header, height=480, width=640,
                                       encoding="rgb8", step=640 * 3, data=flat))  # fmt: skip
                else:
                    samples = (0.01 * rng.standard_normal(CHUNK)).astype(np.float32)
                    info = new("audio_common_msgs/msg/AudioInfo", format=1, channels=1, rate=16000, chunk=CHUNK)
                    data = new("audio_common_msgs/msg/AudioData", float32_data=samples)
                    chunk = new("audio_common_msgs/msg/Audio", audio_data=data, info=info)
                    audio.publish(new("audio_common_msgs/msg/AudioStamped", header=header, audio=chunk))
            published_at[origin_ns // 1_000_000_000 + second + 1] = time.monotonic()  # keyed by the second's end
            player.spin_once(0.0)
        end_ns = origin_ns + seconds * 1_000_000_000
        for step in range(600):  # the clock runs on (10 ms steps) until the node has closed and scored the last second
            if scored["segment"] >= seconds - 1:
                break
            sec, nanosec = ns_to_stamp(end_ns + step * 10_000_000)
            clock.publish(new(port.CLOCK_TYPE, clock=new("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)))
            player.spin_once(0.01)
        wall = time.monotonic() - started
    finally:
        player.shutdown()
        node.terminate()
        node.communicate(timeout=30)
    latencies = sorted((first_feedback[s] - published_at[s]) * 1e3 for s in first_feedback if s in published_at)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))] if latencies else float("nan")
    return {
        "stream_s": seconds,
        "segments_scored": scored["segment"] + 1,
        "stream_x_realtime": seconds / wall,
        "answers": len(first_feedback),
        "feedback_latency_ms_p50": latencies[len(latencies) // 2] if latencies else float("nan"),
        "feedback_latency_ms_p99": p99,
    }
