"""vispeak-demo: the main job on the embedded default, no GPU and no ROS needed.

Runs the bundled tiny demo model (trained here on the synthetic gesture world) over the bundled demo recording (a
rosbag2 MCAP session: a person wakes the assistant, gives a thumbs up, points at an object, interrupts an answer
with a raised palm and waves goodbye). By default it does so as a robot would: it starts the real vispeak node as
its own process on Cyclone DDS (loopback only, a free random domain: it never joins your ROS graph), plays the
recording into it with /clock (sim time), following the node so that nothing is dropped on a slow machine, and
records what the node publishes. `--in-process` runs the same assistant in this process instead (`vispeak-replay`'s
fast mode; same answers, no DDS). Feedback and events are printed as they arrive; three files are written into the
output directory (the current one by default), as `vispeak-replay` writes them:

- `<recording>.vispeak.mcap`: the input topics plus the node's feedback, events and per-segment informative scores;
- `<recording>.timeline.png` / `.html`: the informative score against the trigger rule, the answers, the ground truth.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TextIO

RATE = 4.0  # at most this many times real time; following the node keeps a slower machine lossless
FOLLOW_S = 2  # second k goes out once the node has scored second k - 2
NODE_START_S = 120.0  # loading the model and joining the domain; the wait ends early if the node exits


def node_command(recording: Path, checkpoint: str, alignment: str) -> list[str]:
    """`vispeak-node` over DDS on sim time, its inputs remapped to the recording's camera and microphone topics."""
    from vispeak_ros.tools.bag_source import find_topics, open_recording

    with open_recording(recording) as source:
        topics = find_topics(source.connections, source.path)
        camera_type = next(c.msgtype for c in source.connections if c.topic == topics.camera)
    compressed = camera_type.endswith("/CompressedImage")
    params = {
        "use_sim_time": "true",
        "camera_transport": "compressed" if compressed else "raw",
        "audio_flavour": topics.audio_flavour or "none",
        "alignment": alignment,
        "mute_audio_while_speaking": "false",  # a recording does not hear the robot's own voice
    }
    if checkpoint:
        params["checkpoint"] = str(Path(checkpoint).resolve())
    remaps = {"camera/image_raw/compressed" if compressed else "camera/image_raw": topics.camera}
    if topics.audio_flavour == "ros_drivers":  # recordings carry the stamped variant (AudioDataStamped)
        params["audio_stamped"] = "true"
        remaps["audio_stamped"] = topics.audio
        if topics.audio_info is not None:
            remaps["audio_info"] = topics.audio_info
    elif topics.audio is not None:
        remaps["audio"] = topics.audio
    if topics.query is not None:
        remaps["query"] = topics.query
    args = [sys.executable, "-m", "vispeak_ros.ros.node_main", "--transport", "dds", "--ros-args"]
    for name, value in params.items():
        args += ["-p", f"{name}:={value}"]
    for name, target in remaps.items():
        args += ["-r", f"{name}:={target}"]
    return args


def run(
    recording: Path,
    checkpoint: str,
    output_dir: Path,
    annotations: Path | None = None,
    alignment: str = "trained",
    in_process: bool = False,
    out: TextIO = sys.stdout,
):
    """Run the demo; returns the `replay.ReplayResult`. Raises ValueError/OSError/RuntimeError with one line."""
    from vispeak_ros.tools.replay import replay

    if in_process:
        from vispeak_ros.runtime.assistant import Assistant
        from vispeak_ros.runtime.config import RuntimeConfig

        assistant = Assistant(RuntimeConfig(checkpoint=checkpoint, alignment=alignment))
        return replay(recording, checkpoint, output_dir, "fast", annotations, out=out, assistant=assistant)
    from vispeak_ros.ros.isolation import isolated_env

    env = isolated_env()
    print(f"vispeak-demo: starting vispeak-node (Cyclone DDS, loopback, domain {env['ROS_DOMAIN_ID']})", file=out)
    with tempfile.TemporaryFile(mode="w+") as log:
        node = subprocess.Popen(node_command(recording, checkpoint, alignment), env=env, stdout=log, stderr=log,
                                text=True)  # fmt: skip
        try:
            paced = {"rate": RATE, "follow": FOLLOW_S, "wait_for_node_s": NODE_START_S, "tail_s": 10.0, "env": env,
                     "node_alive": lambda: node.poll() is None}  # fmt: skip
            result = replay(recording, "", output_dir, "paced", annotations, out=out, paced_options=paced)
        except (RuntimeError, ValueError, OSError) as error:
            raise RuntimeError(f"{error}{_node_said(node, log)}") from None
        finally:
            if node.poll() is None:
                node.terminate()
            try:
                node.wait(30)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
        if node.returncode != 0:
            raise RuntimeError(f"vispeak-node exited with code {node.returncode}{_node_said(node, log)}")
    return result


def _node_said(node: subprocess.Popen, log) -> str:
    """The node's last error line, when it has exited (for a one-line message)."""
    if node.poll() is None:
        return ""
    log.seek(0)
    lines = [line.strip() for line in log.read().splitlines() if line.strip()]
    return f"; vispeak-node exited ({node.returncode})" + (f": {lines[-1]}" if lines else "")


def main(argv: list[str] | None = None) -> int:
    from vispeak_ros import data

    parser = argparse.ArgumentParser(
        prog="vispeak-demo",
        description="Run the assistant with the bundled demo model on the bundled recording through the vispeak "
        "node over Cyclone DDS on loopback (no GPU, no ROS, never on your ROS graph).",
    )
    parser.add_argument("--recording", type=Path, help="a rosbag2 recording (default: the bundled demo session)")
    parser.add_argument("--checkpoint", default="", help="checkpoint directory (default: the bundled demo model)")
    parser.add_argument("--output-dir", type=Path, default=Path.cwd(), help="where outputs go (default: here)")
    parser.add_argument("--alignment", choices=["trained", "pad"], default="trained", help="speaking while watching")
    parser.add_argument("--in-process", action="store_true", help="run the assistant in this process (no DDS)")
    args = parser.parse_args(argv)
    recording = args.recording or data.demo_recording()
    annotations = data.demo_annotations() if args.recording is None else None
    if not recording.exists():
        parser.error(f"recording not found: {recording}")
    from vispeak_ros.tools.bag_source import RecordingError

    try:
        run(recording, args.checkpoint, args.output_dir, annotations, args.alignment, args.in_process)
    except (RecordingError, ValueError, OSError, RuntimeError) as error:
        print(f"vispeak-demo: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vispeak-demo: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
