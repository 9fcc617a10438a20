"""vispeak-demo: the main job on the embedded default, no GPU and no ROS needed.

Runs the assistant with the bundled tiny demo model (trained here on the synthetic gesture world) over the bundled
demo recording (a rosbag2 MCAP session: a person wakes the assistant, gives a thumbs up, points at an object,
interrupts an answer with a raised palm and waves goodbye). The recording goes through the same conversions,
segmenter and runtime worker as a live stream on a robot; feedback and events are printed as they happen, and two
files are written into the output directory (the current one by default):

- `<recording>.vispeak/`: a rosbag2 MCAP recording of the feedback, events and per-segment informative scores;
- `<recording>.timeline.png`: the informative score against the trigger rule, the answers, the ground truth.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import TextIO

from vispeak_ros.core.clock import NS_PER_S

SPEAKER = {0: "text", 1: "audio", 2: "visual"}


def _ground_truth(path: Path | None) -> list[dict]:
    if path is None or not path.is_file():
        return []
    return json.loads(path.read_text(encoding="utf-8")).get("events", [])


def _prepare_output(folder: Path, name: str) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    bag, picture = folder / f"{name}.vispeak", folder / f"{name}.timeline.png"
    if bag.exists():  # our own earlier output: a rosbag2 folder with nothing but its metadata and storage
        contents = {p.suffix for p in bag.iterdir()}
        if not bag.is_dir() or not contents <= {".yaml", ".mcap"}:
            raise FileExistsError(f"{bag} exists and is not an earlier vispeak-demo output; move it away")
        shutil.rmtree(bag)
    return bag, picture


def run(
    recording: Path,
    checkpoint: str,
    output_dir: Path,
    annotations: Path | None = None,
    alignment: str = "trained",
    out: TextIO = sys.stdout,
) -> int:
    """Run the demo; returns the number of answers given."""
    from vispeak_ros.runtime.assistant import Assistant
    from vispeak_ros.runtime.config import RuntimeConfig
    from vispeak_ros.runtime.outputs import FeedbackChunk, FinalAnswer, InformativeRecord, TypedEvent
    from vispeak_ros.runtime.worker import Emitted, Worker
    from vispeak_ros.tools.bag_source import SourceStats, read_segments
    from vispeak_ros.tools.output_bag import OutputBag
    from vispeak_ros.tools.timeline import AnswerMark, ScorePoint, Window, draw_timeline, save_timeline

    started = time.perf_counter()
    config = RuntimeConfig(checkpoint=checkpoint, alignment=alignment)
    assistant = Assistant(config)
    print(f"vispeak-demo: model {checkpoint or 'bundled demo checkpoint'}, recording {recording}", file=out)
    bag_path, picture_path = _prepare_output(output_dir, recording.name)
    origin: list[int] = []  # stream time of the first segment, for printing seconds from the start
    scores: list[ScorePoint] = []
    marks: list[AnswerMark] = []
    answers: dict[int, FinalAnswer] = {}

    def seconds(stamp_ns: int) -> float:
        return (stamp_ns - origin[0]) / NS_PER_S

    with OutputBag(bag_path) as bag:

        def on_output(emitted: Emitted) -> None:
            output = emitted.output
            if isinstance(output, InformativeRecord):
                bag.informative(
                    output.stamp_ns, output.segment_index, output.probability, output.running_sum,
                    output.threshold, output.triggered,
                )  # fmt: skip
                scores.append(ScorePoint(seconds(output.stamp_ns), output.probability, output.running_sum,
                                         output.triggered))  # fmt: skip
            elif isinstance(output, FeedbackChunk):
                bag.feedback(
                    output.stamp_ns, output.text, True, output.answer_id, output.trigger, output.answer_segment_index,
                    output.answer_stamp_ns, output.informative or 0.0, emitted.latency_s,
                )  # fmt: skip
                print(f"[{seconds(output.answer_stamp_ns):6.2f} s] {SPEAKER[int(output.trigger)]:>6} "
                      f"#{output.answer_id}: {output.text}", file=out)  # fmt: skip
            elif isinstance(output, FinalAnswer):
                answers[output.answer_id] = output
                bag.feedback(
                    output.stamp_ns, output.text, False, output.answer_id, output.trigger,
                    output.answer_segment_index, output.answer_stamp_ns, 0.0, emitted.latency_s,
                )  # fmt: skip
                if output.reason != "im_end":
                    print(f"{'':11}answer #{output.answer_id} {output.reason}", file=out)
            elif isinstance(output, TypedEvent):
                event = output.event
                bag.event(event.stamp_ns, event.behaviour, event.confidence, event.text, event.answer_id,
                          event.segment_index)  # fmt: skip
                print(f"{'':11}event {event.behaviour.name} ({event.confidence:.2f})", file=out)
                marks.append(AnswerMark(seconds(event.stamp_ns), event.text, event.behaviour.name))

        stats = SourceStats()
        with Worker(assistant, on_output=on_output, replay=True) as worker:
            for segment in read_segments(recording, stats=stats):
                if not origin:
                    origin.append(segment.start_ns)
                worker.submit(segment)
            worker.wait_idle()
        if worker.error is not None:
            raise worker.error
    for answer_id, answer in answers.items():  # answers that were cut or typed NONE still belong on the timeline
        if not any(m.text == answer.text and abs(m.t - seconds(answer.answer_stamp_ns)) < 1e-6 for m in marks):
            marks.append(AnswerMark(seconds(answer.answer_stamp_ns), answer.text, f"#{answer_id} {answer.reason}"))
    marks.sort(key=lambda m: m.t)
    truth = _ground_truth(annotations)
    windows = [Window(e["timespan"][0], e["timespan"][1], e["behaviour"].lower()) for e in truth]
    title = f"{recording.name}: threshold {config.trigger_threshold:g}, {len(answers)} answers"
    save_timeline(picture_path, draw_timeline(scores, config.trigger_threshold, marks, windows, title))
    timely = 0
    for event in truth:
        t1, t2 = event["timespan"]
        hits = [m for m in marks if max(0.0, t1) <= m.t <= t2 + 2.0 and m.label == event["behaviour"]]
        timely += bool(hits)
        verdict = f"answered at {hits[0].t:.1f} s" if hits else "missed"
        print(f"ground truth {event['behaviour']:>16} [{t1:5.1f}, {t2:5.1f}] s: {verdict}", file=out)
    wall = time.perf_counter() - started
    summary = f"done: {len(answers)} answers"
    if truth:
        summary += f", {timely}/{len(truth)} ground-truth events answered in time"
    print(f"{summary}; {len(scores)} s of stream in {wall:.1f} s; wrote {bag_path} and {picture_path}", file=out)
    return len(answers)


def main(argv: list[str] | None = None) -> int:
    from vispeak_ros import data

    parser = argparse.ArgumentParser(
        prog="vispeak-demo",
        description="Run the assistant with the bundled demo model on the bundled recording (no GPU, no ROS).",
    )
    parser.add_argument("--recording", type=Path, help="a rosbag2 recording (default: the bundled demo session)")
    parser.add_argument("--checkpoint", default="", help="checkpoint directory (default: the bundled demo model)")
    parser.add_argument("--output-dir", type=Path, default=Path.cwd(), help="where outputs go (default: here)")
    parser.add_argument("--alignment", choices=["trained", "pad"], default="trained", help="speaking while watching")
    args = parser.parse_args(argv)
    recording = args.recording or data.demo_recording()
    annotations = data.demo_annotations() if args.recording is None else None
    if not recording.exists():
        parser.error(f"recording not found: {recording}")
    try:
        run(recording, args.checkpoint, args.output_dir, annotations, args.alignment)
    except (ValueError, OSError) as error:  # bad checkpoint, bad recording, unwritable output: one line
        print(f"vispeak-demo: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

