"""vispeak-replay with the bundled demo model on CPU: replay speed and peak memory on a 10-minute recording.

- stream_x_realtime: stream seconds per wall second of `vispeak-replay --mode fast` on the bundled one-minute demo
  recording, model loading excluded (load_s), everything else included (reading, segmenting, the assistant, writing
  the output recording); the goal is >= 20 on 2 cores;
- read_x_realtime: the same recording read and cut into segments without the model (the replay's own cost);
- model_ms_per_segment_1t / _2t: `Assistant.process` per one-second segment, run alone on the same segments, with
  one and with two torch threads (replay uses one for the demo model; see `replay.set_threads`);
- peak_rss_mb: peak resident memory of a `vispeak-replay` process (a child, so this process's memory does not
  count) over a 10-minute synthetic-world recording made by concatenating one session stream (`--quick`: 2
  minutes), with its speed (long_x_realtime, model loading included) and the load average of the machine
  (load_avg: the 2 cores may be shared, which slows every figure here).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vispeak_ros.core.clock import NS_PER_S

DESCRIPTION = "vispeak-replay, demo model, CPU: stream_x_realtime (goal >= 20), peak_rss_mb on a 10-minute recording"


def concatenated_recording(path: Path, minutes: float, seed: int = 7) -> Path:
    """A rosbag2 MCAP recording of one synthetic session stream repeated (stamps shifted) for `minutes`."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from vispeak_ros.ros import audio_common
    from vispeak_ros.training import recordings, world

    stream = world.generate_session(seed=seed, size=(240, 240), fps=10)
    store = audio_common.typestore("mgonzs13")
    messages = recordings.bag_messages(stream, store, audio_format="int16")
    period_ns = round(stream.duration_s * NS_PER_S)
    repeats = max(1, round(minutes * 60 * NS_PER_S / period_ns))
    time_type = store.types["builtin_interfaces/msg/Time"]
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:  # type: ignore[arg-type]
        connections = {}
        for repeat in range(repeats):
            shift = repeat * period_ns
            for record, topic, msgtype, msg in messages:
                if topic not in connections:
                    connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
                header = getattr(msg, "header", None)
                if header is not None:
                    original = header.stamp
                    header.stamp = time_type(*divmod(original.sec * NS_PER_S + original.nanosec + shift, NS_PER_S))
                writer.write(connections[topic], record + shift, store.serialize_cdr(msg, msgtype))
                if header is not None:
                    header.stamp = original
    return path


def _speed() -> dict:
    import torch

    from vispeak_ros import data
    from vispeak_ros.runtime.assistant import Assistant
    from vispeak_ros.runtime.config import RuntimeConfig
    from vispeak_ros.tools.bag_source import read_segments
    from vispeak_ros.tools.replay import replay

    started = time.perf_counter()
    assistant = Assistant(RuntimeConfig())
    load_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:  # replay's defaults: one torch thread for the demo model
        result = replay(data.demo_recording(), output_dir=folder, out=None, progress=False, assistant=assistant)
    started = time.perf_counter()
    segments = list(read_segments(data.demo_recording()))
    read_s = time.perf_counter() - started
    figures = {"stream_x_realtime": result.speed, "load_s": load_s, "read_x_realtime": len(segments) / read_s}
    for threads in (1, 2):  # the model alone, per segment, with one and two torch threads
        torch.set_num_threads(threads)
        model = Assistant(RuntimeConfig())
        started = time.perf_counter()
        for segment in segments:
            model.process(segment)
        figures[f"model_ms_per_segment_{threads}t"] = 1000 * (time.perf_counter() - started) / len(segments)
    return figures


def _peak_rss(minutes: float) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        bag = concatenated_recording(Path(folder) / "long_session", minutes)
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "vispeak_ros.tools.replay", str(bag), "--output-dir", folder, "--no-progress"],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"vispeak-replay failed: {result.stderr.strip()}")
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kilobytes on Linux
        last = result.stdout.strip().splitlines()[-2]  # "done: ... N s of stream in W s (Xx realtime)"
        stream_s = float(last.split(" s of stream")[0].split()[-1])
    return {"peak_rss_mb": peak_kb / 1024, "long_stream_s": stream_s, "long_x_realtime": stream_s / wall}


def run(quick: bool = False) -> dict:
    figures = _speed()
    figures.update(_peak_rss(2.0 if quick else 10.0))
    figures["load_avg"] = os.getloadavg()[0]
    return figures
