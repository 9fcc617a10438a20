"""An hour of stream through the vispeak node (own process, demo model, Cyclone DDS): memory and per-segment cost
at 1, 30 and 60 minutes.

The stream is the bundled demo recording (a person waking the assistant, asking, gesturing, interrupting, saying
goodbye: answers are generated every minute) looped for 61 minutes under sim time: 30 raw rgb8 frames per second
(the recording's frame of that second, resized to FRAME_SIZE: small frames, so the CPU goes to the node), 16 kHz
audio in 16 AudioStamped chunks per second, and its four queries. Stream second k goes out once the node has
scored second k - 2, so nothing is dropped and the stream runs as fast as the node does (faster than real time).

- cost_ms_<m>min: wall milliseconds per stream second over the minute starting at minute m (the same loop of the
  recording each time, so the same answers); cost_ratio_60_1 = cost at 60 / at 1 (goal <= 1.15).
- rss_mb_<m>min: the node's resident memory after that minute; rss_growth_mb = at 60 - at 1 (goal <= 50).
- segment_queue_max / output_queue_max: the deepest queues /diagnostics reported; segments_dropped: seconds the
  model skipped for being behind (0 when paced).
`--quick`: minutes 1, 3 and 5 only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DESCRIPTION = "node over DDS, 1 h of 30 fps + 16 kHz (sim time): rss_growth_mb, cost_ratio_60_1"
REPO_ROOT = Path(__file__).resolve().parents[1]
FPS = 30
CHUNK = 1000  # audio samples per message
FRAME_SIZE = (120, 120)  # width, height
LEAD = 2
NS = 1_000_000_000


def _recording() -> tuple[list[np.ndarray], list[np.ndarray], dict[int, list[tuple[float, str]]]]:
    """Per second of the demo recording: its frame (resized), its audio, its queries (offset in the second, text)."""
    import cv2

    from vispeak_ros import data
    from vispeak_ros.tools.bag_source import read_segments

    frames, audio, texts = [], [], {}
    for segment in read_segments(data.demo_recording()):
        frame = segment.frame if segment.frame is not None else frames[-1]
        frames.append(np.ascontiguousarray(cv2.resize(frame, FRAME_SIZE)).reshape(-1))
        audio.append(segment.audio.astype(np.float32))
        texts[segment.index] = [((t.stamp_ns - segment.start_ns) / NS, t.text) for t in segment.texts]
    return frames, audio, texts


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(quick: bool = False) -> dict:
    from vispeak_ros.core.clock import ns_to_stamp
    from vispeak_ros.ros import port
    from vispeak_ros.ros.adapters.dds_adapter import DdsNode, build_typestore
    from vispeak_ros.ros.isolation import isolate_this_process

    marks = (1, 3, 5) if quick else (1, 30, 60)
    seconds = (marks[-1] + 1) * 60 + 1  # the last window ends at the first second after it
    frames, audio_s, texts = _recording()
    loop = len(frames)
    isolate_this_process()
    node = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "scripts" / "vispeak-node"), "--transport", "dds", "--ros-args",
         "-p", "use_sim_time:=true", "-p", "mute_audio_while_speaking:=false"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    player = DdsNode("soak_player", typestore=build_typestore(audio_flavour="mgonzs13"))
    scored = {"segment": -1}
    queues = {"segment": 0, "output": 0, "dropped": 0, "answers": 0}

    def on_informative(msg) -> None:
        scored["segment"] = max(scored["segment"], int(msg.segment_index))

    def on_diagnostics(msg) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if "segment queue depth" in values:
                queues["segment"] = max(queues["segment"], int(values["segment queue depth"]))
                queues["output"] = max(queues["output"], int(values["output queue depth"]))
                queues["dropped"] = int(values["segments dropped (model behind)"])

    def on_feedback(msg) -> None:
        queues["answers"] += not msg.partial

    player.create_subscription("vispeak_ros/msg/Informative", "/vispeak/informative", on_informative, port.DEFAULT)
    player.create_subscription("vispeak_ros/msg/Feedback", "/vispeak/feedback", on_feedback, port.DEFAULT)
    player.create_subscription("diagnostic_msgs/msg/DiagnosticArray", "/diagnostics", on_diagnostics,
                               port.DIAGNOSTICS_QOS)  # fmt: skip
    camera = player.create_publisher("sensor_msgs/msg/Image", "/camera/image_raw", port.SENSOR_DATA)
    audio = player.create_publisher("audio_common_msgs/msg/AudioStamped", "/audio", port.SENSOR_DATA)
    query = player.create_publisher("std_msgs/msg/String", "/query", port.DEFAULT)
    clock = player.create_publisher(port.CLOCK_TYPE, port.CLOCK_TOPIC, port.DEFAULT)
    new = player.new_message
    origin_ns = 1_700_000_000 * NS
    width, height = FRAME_SIZE
    window_start: dict[int, float] = {}
    cost_ms: dict[int, float] = {}
    rss: dict[int, float] = {}
    try:
        writers = (camera, audio, query, clock)
        if not player.spin_until(lambda: all(w.matched_subscriptions() for w in writers), 120.0):
            raise RuntimeError(f"the node did not come up: {node.stderr.read() if node.poll() is not None else ''}")
        started = time.monotonic()
        for second in range(seconds):
            player.spin_until(lambda s=second: scored["segment"] >= s - LEAD, 30.0)
            if node.poll() is not None:
                raise RuntimeError(f"the node exited ({node.returncode}) at stream second {second}")
            minute, at = divmod(second, 60)
            if at == 0:
                if minute in marks:
                    window_start[minute] = time.monotonic()
                if minute - 1 in window_start:  # the window of minute - 1 ends here
                    cost_ms[minute - 1] = (time.monotonic() - window_start[minute - 1]) / 60 * 1e3
                    rss[minute - 1] = _rss_mb(node.pid)
            k = second % loop
            events = [(i / FPS, "frame", None) for i in range(FPS)]
            events += [(i * CHUNK / 16000, "audio", i) for i in range(16)]
            events += [(offset, "query", text) for offset, text in texts.get(k, [])]
            for offset, kind, extra in sorted(events, key=lambda e: e[0]):
                stamp = origin_ns + second * NS + round(offset * NS)
                sec, nanosec = ns_to_stamp(stamp)
                time_msg = new("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)
                clock.publish(new(port.CLOCK_TYPE, clock=time_msg))
                header = new("std_msgs/msg/Header", stamp=time_msg, frame_id="camera")
                if kind == "frame":
                    camera.publish(new("sensor_msgs/msg/Image", header=header, height=height, width=width,
                                       encoding="rgb8", step=width * 3, data=frames[k]))  # fmt: skip
                elif kind == "audio":
                    samples = audio_s[k][extra * CHUNK : (extra + 1) * CHUNK]
                    info = new("audio_common_msgs/msg/AudioInfo", format=1, channels=1, rate=16000, chunk=CHUNK)
                    data = new("audio_common_msgs/msg/AudioData", float32_data=samples)
                    chunk = new("audio_common_msgs/msg/Audio", audio_data=data, info=info)
                    audio.publish(new("audio_common_msgs/msg/AudioStamped", header=header, audio=chunk))
                else:
                    query.publish(new("std_msgs/msg/String", data=extra))
            player.spin_once(0.0)
        wall = time.monotonic() - started
        stderr = ""
    finally:
        player.shutdown()
        node.terminate()
        _, stderr = node.communicate(timeout=60)
    if "Traceback" in stderr:
        raise RuntimeError(f"the node logged a traceback: {stderr[-2000:]}")
    first, last = marks[0], marks[-1]
    return {
        "frame": f"{width}x{height}_rgb8",
        "stream_s": seconds,
        "stream_x_realtime": seconds / wall,
        **{f"cost_ms_{m}min": cost_ms[m] for m in marks},
        **{f"rss_mb_{m}min": rss[m] for m in marks},
        "rss_growth_mb": rss[last] - rss[first],
        f"cost_ratio_{last}_{first}": cost_ms[last] / cost_ms[first],
        "segment_queue_max": queues["segment"],
        "output_queue_max": queues["output"],
        "segments_dropped": queues["dropped"],
        "answers": queues["answers"],
    }
