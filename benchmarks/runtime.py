"""The streaming runtime on the tiny random model (CPU): throughput while answers are generated, and latency.

- stream_x_realtime: stream-seconds processed per wall-second when segments are fed as fast as the runtime takes
  them (replay), with a trigger threshold low enough that an answer is being generated most of the time;
- first_chunk_ms: live run paced at real time (one segment per second): wall time from the submit of the segment
  whose seg row started an answer (= its end, live) to the first sentence chunk of that answer, median, with the
  trained alignment (later tokens wait for the next user rows, so this includes stream time) and with `pad`
  alignment (first_chunk_ms_pad);
- speaking_fraction: share of segments during which an answer was running; ingest_p99_ms: `Worker.submit` cost.

Full runs with the demo checkpoint present also compare the alignments on held-out world streams (one per event
scenario): `demo_<alignment>_timely` (share of events whose first answer is timely), `demo_<alignment>_end_s`
(mean stream seconds from an answer's trigger to its end) and `demo_same_text` (share of answers with the same text
under both alignments, matched by order).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from vispeak_ros.core.clock import NS_PER_S
from vispeak_ros.core.segmenter import SAMPLES_PER_SEGMENT, Segment
from vispeak_ros.model.tiny import tiny_model
from vispeak_ros.runtime.assistant import Assistant
from vispeak_ros.runtime.config import RuntimeConfig
from vispeak_ros.runtime.outputs import FeedbackChunk, FinalAnswer
from vispeak_ros.runtime.tiny import tiny_tokenizer
from vispeak_ros.runtime.worker import Worker

DESCRIPTION = "runtime on the tiny model, CPU: stream_x_realtime while answering, first_chunk_ms (segment end -> chunk)"

T0 = 1_700_000_000 * NS_PER_S


def _segments(count: int, seed: int = 0) -> list[Segment]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        start = T0 + i * NS_PER_S
        out.append(
            Segment(
                index=i,
                start_ns=start,
                end_ns=start + NS_PER_S,
                frame=rng.integers(0, 256, (120, 160, 3), dtype=np.uint8),
                frame_stamp_ns=start,
                audio=(rng.standard_normal(SAMPLES_PER_SEGMENT) * 0.05).astype(np.float32),
                audio_coverage=1.0,
                texts=(),
                partial=False,
            )
        )
    return out


def _assistant(alignment: str) -> Assistant:
    config = RuntimeConfig(trigger_threshold=1.0, max_answer_tokens=48, alignment=alignment)
    return Assistant.from_model(tiny_model(seed=0), tiny_tokenizer(), config)


def _throughput(count: int) -> tuple[float, float]:
    assistant = _assistant("trained")
    segs = _segments(count)
    speaking = 0
    t0 = time.perf_counter()
    for seg in segs:
        assistant.process(seg)
        speaking += assistant.answer is not None
    return count / (time.perf_counter() - t0), speaking / count


def _live(seconds: int, alignment: str) -> tuple[float, float, int]:
    """Real-time paced run: (median first-chunk latency ms, ingest p99 ms, answers)."""
    submitted: dict[int, float] = {}
    first: dict[int, float] = {}
    answers: dict[int, int] = {}

    def on_output(emitted) -> None:
        out = emitted.output
        if isinstance(out, (FeedbackChunk, FinalAnswer)) and out.answer_id not in first:
            first[out.answer_id] = time.perf_counter()
            answers[out.answer_id] = out.answer_segment_index

    worker = Worker(_assistant(alignment), on_output=on_output)
    with worker:
        start = time.perf_counter()
        for seg in _segments(seconds, seed=1):
            time.sleep(max(0.0, start + seg.index + 1 - time.perf_counter()))  # the segment closes at its end
            submitted[seg.index] = time.perf_counter()
            worker.submit(seg)
        worker.wait_idle(timeout=60)
    lat = [1000 * (first[a] - submitted[s]) for a, s in answers.items() if s in submitted]
    return (statistics.median(lat) if lat else float("nan")), 1000 * worker.stats.ingest_percentile(99), len(lat)


def run(quick: bool) -> dict:
    torch.manual_seed(0)
    rate, speaking = _throughput(30 if quick else 120)
    first_ms, ingest_ms, answers = _live(6 if quick else 30, "trained")
    figures = {
        "stream_x_realtime": rate,
        "first_chunk_ms": first_ms,
        "speaking_fraction": speaking,
        "ingest_p99_ms": ingest_ms,
        "answers": answers,
        "threads": torch.get_num_threads(),
    }
    if not quick:
        figures["first_chunk_ms_pad"] = _live(30, "pad")[0]
        figures.update(compare_alignments())
    return figures


def _world_segments(stream) -> list[Segment]:
    from vispeak_ros.core.segmenter import Segmenter

    items = [(stamp, 0, "frame", frame) for stamp, frame in stream.frames]
    items += [(stamp, 1, "audio", chunk) for stamp, chunk in stream.audio_chunks()]
    items += [(stamp, 2, "text", text) for stamp, text in stream.user_texts]
    segmenter = Segmenter()
    out: list[Segment] = []
    for stamp, _, kind, value in sorted(items, key=lambda item: (item[0], item[1])):
        out += {"frame": segmenter.add_frame, "audio": segmenter.add_audio, "text": segmenter.add_text}[kind](
            stamp, value
        )
    return out + segmenter.flush()


def compare_alignments(seed: int = 1_000_000_000) -> dict:
    """Trained vs pad alignment on the demo model (empty when the checkpoint is absent)."""
    from vispeak_ros.data import demo_checkpoint
    from vispeak_ros.model import load_checkpoint
    from vispeak_ros.training import world

    path = demo_checkpoint()
    if not (path / "config.json").is_file():
        return {}
    model = load_checkpoint(path)
    scenarios = [s for s in world.SCENARIOS if s != "none"]
    texts: dict[str, list[str]] = {}
    figures: dict = {}
    for alignment in ("trained", "pad"):
        timely, lags, said = [], [], []
        for scenario in scenarios:
            stream = world.generate(scenario, seed, split="heldout")
            assistant = Assistant.from_model(model, model.tokenizer, RuntimeConfig(alignment=alignment))
            answers = [
                o for seg in _world_segments(stream) for o in assistant.process(seg) if isinstance(o, FinalAnswer)
            ]
            for truth in stream.events:
                timely.append(bool(answers) and truth.timely(stream.seconds(answers[0].answer_stamp_ns)))
            lags += [(a.stamp_ns - a.answer_stamp_ns) / NS_PER_S for a in answers]
            said += [a.text for a in answers]
        texts[alignment] = said
        figures[f"demo_{alignment}_timely"] = sum(timely) / max(1, len(timely))
        figures[f"demo_{alignment}_end_s"] = statistics.fmean(lags) if lags else float("nan")
    pairs = list(zip(texts["trained"], texts["pad"], strict=False))  # counts may differ
    figures["demo_same_text"] = sum(a == b for a, b in pairs) / max(1, len(pairs))
    return figures
