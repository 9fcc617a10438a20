"""vispeak-replay: run the assistant over a recording and write what it said, with a picture of why.

    vispeak-replay BAG [--checkpoint DIR] [--output-dir DIR] [--mode fast|paced] [--annotations FILE]

BAG is a rosbag2 folder (mcap or sqlite3 storage), a bare `.mcap` file (no metadata.yaml, as Foxglove and other
MCAP writers make) or a video file (audio from `--audio`, a `.wav` beside it, or the video's own track). Message
types are registered from the definitions stored in the recording; camera and microphone topics are found by type
(`--camera-topic` / `--audio-topic` to choose). Three files are written into the current directory (or
`--output-dir`), never next to the input:

- `<name>.vispeak.mcap`: one MCAP file (rosbag2 profile, definitions stored: Foxglove opens it) holding the input
  topics as recorded plus /vispeak/feedback, /vispeak/events and /vispeak/informative (per segment), in stream time
  (replaying such an output again drops its old /vispeak/* topics and writes new ones);
- `<name>.timeline.png` and `<name>.timeline.html` (self-contained: inline SVG, no network): the informative score
  against the trigger rule, where each answer started and its text, and ground-truth windows with `--annotations`.

Modes: `fast` (default) runs the assistant in this process as fast as it goes; it is deterministic (two runs give
the same feedback and events; only the wall-clock `latency_s` differs). `paced` publishes the input topics in real
time over Cyclone DDS (ROS 2 wire format) into a running vispeak node and records what it publishes; see
`replay_paced`. Bad input (no camera topic, unreadable or unknown storage, missing annotations) is one line naming
the file and the reason, exit code 1; a partly corrupt recording replays what is readable and says what was skipped.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from vispeak_ros.core.clock import NS_PER_S

MODES = ("fast", "paced")
OUTPUT_TOPICS = ("/vispeak/feedback", "/vispeak/events", "/vispeak/informative")


@dataclass
class ReplayResult:
    """What a replay produced (for tests, benchmarks and the summary printed at the end)."""

    bag: Path
    timeline_png: Path
    timeline_html: Path
    collector: Any  # replay_outputs.Collector
    verdicts: list = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    stream_s: float = 0.0
    wall_s: float = 0.0  # the whole call, model loading and timeline drawing included
    busy_s: float = 0.0  # the replay loop only: reading, segmenting, the assistant, writing the output
    counts: dict[str, int] = field(default_factory=dict)  # messages per topic in the output recording

    @property
    def speed(self) -> float:
        """Stream seconds per wall second of the replay loop (x realtime; model loading excluded)."""
        return self.stream_s / self.busy_s if self.busy_s > 0 else 0.0


@dataclass
class RunFigures:
    counts: dict[str, int]  # messages per topic in the output recording
    stream_s: float  # stream seconds replayed
    skipped: list[str]  # what could not be read, one line each
    busy_s: float  # wall seconds of the replay itself (model loading excluded)


def output_paths(output_dir: Path, name: str) -> tuple[Path, Path, Path]:
    """(recording, png, html) for a recording called `name`; an earlier output of ours is replaced, nothing else."""
    from vispeak_ros.tools.replay_mcap import is_mcap

    output_dir.mkdir(parents=True, exist_ok=True)
    bag = output_dir / f"{name}.vispeak.mcap"
    png, html = output_dir / f"{name}.timeline.png", output_dir / f"{name}.timeline.html"
    if bag.exists():
        if not bag.is_file() or not is_mcap(bag):
            raise FileExistsError(f"{bag} exists and is not an earlier vispeak-replay output; move it away")
        bag.unlink()
    return bag, png, html


def open_source(path: Path, audio: Path | None = None):
    """A `Recording` (rosbag2 folder or bare MCAP) or a `VideoRecording`, by what is at `path`."""
    from vispeak_ros.tools.bag_source import open_recording
    from vispeak_ros.tools.replay_video import VideoRecording, is_video

    if is_video(path):
        return VideoRecording(path, audio)
    if audio is not None:
        raise ValueError("--audio goes with a video file, not with a recording (its audio topic is used)")
    return open_recording(path)


def _segmenter_options(config) -> dict:
    return {"frame_policy": config.frame_policy, "max_input_latency_s": config.max_input_latency_s}


def run_fast(
    source,
    config,
    bag_path: Path,
    collector,
    progress,
    camera_topic: str | None = None,
    audio_topic: str | None = None,
    assistant=None,
    threads: int = 0,
) -> RunFigures:
    """The assistant in this process over every segment, in order, on this thread.

    No worker thread: reading and cutting a recording costs about 6 ms per segment against 60-150 ms for the demo
    model, so overlapping them gains little, and one thread keeps torch's thread setting (set per thread) and the
    output writer simple. Outputs are the same as through `runtime.Worker(replay=True)`: every segment, in order;
    `latency_s` is the wall time from the start of the segment's processing to the output.
    """
    from vispeak_ros.runtime.assistant import Assistant
    from vispeak_ros.runtime.worker import Emitted
    from vispeak_ros.tools.bag_source import SourceStats, read_segments, with_our_types
    from vispeak_ros.tools.output_bag import OutputBag
    from vispeak_ros.tools.replay_outputs import write_output
    from vispeak_ros.tools.replay_video import VideoRecording, segment_messages

    set_threads(threads, config)
    assistant = assistant if assistant is not None else Assistant(config)
    loop_started = time.perf_counter()
    stats = SourceStats()
    video = isinstance(source, VideoRecording)
    if video:
        from vispeak_ros.ros import audio_common

        store = audio_common.typestore("mgonzs13")
    else:
        store = with_our_types(source.typestore)
    stream_end = [0]
    with OutputBag(bag_path, typestore=store, single_file=True) as bag:
        bag.on_write = collector.on_message
        if video:

            def record_input(segment) -> None:
                for topic, msgtype, stamp, msg in segment_messages(store, segment):
                    bag.write(topic, msgtype, stamp, msg)

            segments = source.segments(stats, _segmenter_options(config), on_segment=record_input)
        else:
            definitions = {c.topic: c.msgdef if _copyable(c) else "" for c in source.connections}

            def record_input(connection, record_ns, raw) -> None:
                if connection.topic not in OUTPUT_TOPICS:  # replaying an output of ours: its old answers stay out
                    bag.copy(connection.topic, connection.msgtype, definitions[connection.topic], record_ns, raw)

            segments = read_segments(source, None, camera_topic, audio_topic, stats, record_input,
                                     _segmenter_options(config))  # fmt: skip

        origin = None
        for segment in segments:
            if origin is None:
                origin = segment.start_ns
                collector.origin_ns = collector.origin_ns if collector.origin_ns is not None else origin
            stream_end[0] = segment.end_ns
            began = time.perf_counter()
            assistant.process(segment, lambda o, i=segment.index, t=began: write_output(bag, Emitted(o, i, _since(t))))
            progress.update((segment.end_ns - origin) / NS_PER_S)
        counts = dict(bag.counts)
    skipped = list(source.problems)
    if stats.decode_errors:
        skipped.append(f"{source.path}: {stats.decode_errors} messages did not decode ({stats.last_error})")
    if stats.conversion_errors:
        skipped.append(f"{source.path}: {stats.conversion_errors} messages could not be converted ({stats.last_error})")
    bad_frames = getattr(stats.segmenter, "decode_errors", 0)
    if bad_frames:
        skipped.append(f"{source.path}: {bad_frames} chosen camera frames did not decode (segments without video)")
    stream_s = (stream_end[0] - origin) / NS_PER_S if origin is not None else 0.0
    return RunFigures(counts, stream_s, skipped, time.perf_counter() - loop_started)


def _since(started: float) -> float:
    return time.perf_counter() - started


def set_threads(threads: int, config) -> None:
    """torch intra-op threads for the model. 0: one thread for the bundled demo model on CPU, whose matrices
    (hidden size 64) are too small for threads to pay off; measured on 2 shared cores, 2 threads ran 10x slower
    than 1 (OpenMP workers spinning against the reader thread and other processes). torch's default otherwise."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    elif not config.checkpoint and config.device == "cpu":
        torch.set_num_threads(1)


def _copyable(connection) -> bool:
    """Whether the stored definition can be written as is (rosbags tells msg from IDL by the IDL header)."""
    return connection.msgdef_format == "ros2msg" or connection.msgdef.startswith("=" * 80 + "\nIDL: ")


def replay(
    path: str | Path,
    checkpoint: str = "",
    output_dir: str | Path | None = None,
    mode: str = "fast",
    annotations: str | Path | None = None,
    camera_topic: str | None = None,
    audio_topic: str | None = None,
    audio: str | Path | None = None,
    config_file: str | Path | None = None,
    progress: bool | None = None,
    out: TextIO | None = sys.stdout,
    err: TextIO | None = None,
    paced_options: dict | None = None,
    assistant=None,
    threads: int = 0,
) -> ReplayResult:
    """Replay one recording; see the module docstring. Raises RecordingError/AnnotationError/ValueError/OSError."""
    from vispeak_ros.runtime.config import RuntimeConfig, load_config
    from vispeak_ros.tools.replay_annotations import load_windows
    from vispeak_ros.tools.replay_outputs import Collector
    from vispeak_ros.tools.replay_progress import Progress
    from vispeak_ros.tools.timeline import draw_timeline, save_timeline, save_timeline_html, timeline_html

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    started = time.perf_counter()
    source = open_source(Path(path), Path(audio) if audio is not None else None)
    windows = load_windows(annotations, source.name) if annotations is not None else []
    config = load_config(config_file) if config_file is not None else RuntimeConfig()
    if checkpoint:
        config = config.with_overrides(checkpoint=str(checkpoint))
    output_dir = Path(output_dir) if output_dir is not None else Path.cwd()
    bag_path, png_path, html_path = output_paths(output_dir, source.name)
    total = (source.end_ns - source.start_ns) / NS_PER_S if source.end_ns and source.start_ns is not None else None
    bar = Progress(total, stream=err if err is not None else sys.stderr, enabled=progress)
    collector = Collector(out=out, before_print=bar.clear)
    if out is not None:
        model = config.checkpoint or "bundled demo checkpoint"
        print(f"vispeak-replay: {source.kind} {source.path} ({mode} mode), model {model}", file=out, flush=True)
    try:
        if mode == "fast":
            figures = run_fast(source, config, bag_path, collector, bar, camera_topic, audio_topic, assistant, threads)
        else:
            from vispeak_ros.tools.replay_paced import run_paced

            figures = run_paced(source, bag_path, collector, bar, camera_topic, audio_topic, **(paced_options or {}))
    except BaseException:
        bag_path.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    bar.finish()
    threshold = collector.threshold if collector.threshold is not None else config.trigger_threshold
    marks = collector.marks()
    title = f"{source.name}: threshold {threshold:g}, {len(collector.answers)} answers ({mode} replay)"
    plot_windows = collector.timeline_windows(windows)
    save_timeline(png_path, draw_timeline(collector.scores, threshold, marks, plot_windows, title))
    save_timeline_html(html_path, timeline_html(collector.scores, threshold, marks, plot_windows, title))
    result = ReplayResult(bag_path, png_path, html_path, collector, collector.verdicts(windows), figures.skipped,
                          figures.stream_s, time.perf_counter() - started, figures.busy_s, figures.counts)  # fmt: skip
    if out is not None:
        _summarise(result, out)
    return result


def _summarise(result: ReplayResult, out: TextIO) -> None:
    for verdict in result.verdicts:
        w = verdict.window
        if verdict.answered_at is not None:
            what = f"answered at {verdict.answered_at:.1f} s"
        else:
            what = f"missed ({verdict.other} instead)" if verdict.other else "missed"
        print(f"ground truth {w.behaviour:>16} [{w.t1:5.1f}, {w.t2:5.1f}] s: {what}", file=out)
    for line in result.skipped:
        print(f"skipped: {line}", file=out)
    answered = sum(v.answered_at is not None for v in result.verdicts)
    summary = f"done: {len(result.collector.answers)} answers, {len(result.collector.events)} events"
    if result.verdicts:
        summary += f", {answered}/{len(result.verdicts)} ground-truth events answered in time"
    print(f"{summary}; {result.stream_s:.0f} s of stream in {result.busy_s:.1f} s ({result.speed:.1f}x realtime, "
          f"{result.wall_s:.1f} s with loading)", file=out)  # fmt: skip
    print(f"wrote {result.bag}, {result.timeline_png} and {result.timeline_html}", file=out, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vispeak-replay",
        description="Run the assistant over a recording (rosbag2 folder, .mcap file or video + wav) and write its "
        "feedback, events and informative scores as an MCAP recording plus a timeline (PNG and HTML).",
    )
    parser.add_argument("recording", type=Path, help="rosbag2 folder (mcap/sqlite3), .mcap file, or video file")
    parser.add_argument("--checkpoint", default="", help="checkpoint directory (default: the bundled demo model)")
    parser.add_argument("--config", type=Path, help="assistant YAML (RuntimeConfig keys or ROS 2 params format)")
    parser.add_argument("--output-dir", type=Path, help="where the outputs go (default: the current directory)")
    parser.add_argument("--mode", choices=MODES, default="fast", help="fast: in-process, deterministic (default); "
                        "paced: real time over DDS into a running vispeak node")  # fmt: skip
    parser.add_argument("--annotations", type=Path, help="ground truth (demo-style events or ViSpeak-Bench items)")
    parser.add_argument("--camera-topic", help="camera topic (default: found by type)")
    parser.add_argument("--audio-topic", help="microphone topic (default: found by type)")
    parser.add_argument("--audio", type=Path, help="audio file for a video (default: <video>.wav or its own track)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads in fast mode (default: 1 for the "
                        "bundled demo model, torch's choice otherwise)")  # fmt: skip
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="always draw the progress bar (default: when stderr is a terminal)")  # fmt: skip
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="never draw it")
    paced = parser.add_argument_group("paced mode")
    paced.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0: real time)")
    paced.add_argument("--wait-for-node", type=float, default=10.0, metavar="S",
                       help="seconds to wait for the node to subscribe to the camera topic (default 10)")  # fmt: skip
    paced.add_argument("--tail", type=float, default=3.0, metavar="S",
                       help="seconds to keep recording after the last input message (default 3)")  # fmt: skip
    paced.add_argument("--network", action="store_true",
                       help="use your ROS 2 network settings (default: loopback only, your ROS_DOMAIN_ID)")  # fmt: skip
    paced.add_argument("--remap", action="append", default=[], metavar="FROM:=TO",
                       help="publish recorded topic FROM as TO (repeatable)")  # fmt: skip
    paced.add_argument("--namespace", default="/", help="the node's namespace (outputs: <ns>/vispeak/..., default /)")
    paced.add_argument("--follow", type=int, nargs="?", const=2, metavar="N",
                       help="send second k only once the node has scored second k - N (default N 2): a node slower "
                       "than --rate drops nothing")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    from vispeak_ros.tools.bag_source import RecordingError
    from vispeak_ros.tools.replay_annotations import AnnotationError

    parser = build_parser()
    args = parser.parse_args(argv)
    remap = {}
    for rule in args.remap:
        source, sep, target = rule.partition(":=")
        if not sep or not source.startswith("/") or not target.startswith("/"):
            parser.error(f"--remap {rule!r}: expected /from:=/to")
        remap[source] = target
    paced = {
        "rate": args.rate,
        "wait_for_node_s": args.wait_for_node,
        "tail_s": args.tail,
        "network": args.network,
        "namespace": args.namespace,
        "remap": remap,
        "follow": args.follow,
    }
    try:
        replay(
            args.recording, args.checkpoint, args.output_dir, args.mode, args.annotations, args.camera_topic,
            args.audio_topic, args.audio, args.config, args.progress, paced_options=paced, threads=args.threads,
        )  # fmt: skip
    except (RecordingError, AnnotationError, ValueError, OSError, RuntimeError) as error:
        print(f"vispeak-replay: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vispeak-replay: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
