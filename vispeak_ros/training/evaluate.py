"""Held-out evaluation of a ViSpeak model on the synthetic world, through `StreamingSession` (the inference path).

Each held-out stream is fed block by block in the shared layout (system prompt via `start`, then per second: frame
block, audio block, text blocks via `feed`); the proactive trigger decides at frame seg rows, and each started
answer is decoded greedily to its `<|im_end|>`. Earlier small-talk answers are pre-filled in the agent stream, as
ViSpeak-Bench does for its context turns (`start` takes the rows up to the end of the last pre-filled answer, whose
decision cannot fire). Visual-reference streams answer the user's text, so those run with reactive decisions on.

Figures (ViSpeak-Bench time rule `max(0, t1) <= t <= t2 + 2`): per behaviour the time accuracy of the first answer,
exact match of its text with the reference answer, and the confusion of the behaviour typed from the answer text;
false triggers per minute on event-free (`none`) streams (every answer there is false).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from vispeak_ros.core.events import Behaviour
from vispeak_ros.model.prompts import StreamTemplate
from vispeak_ros.model.session import StreamingSession
from vispeak_ros.model.vispeak import ViSpeakForCausalLM
from vispeak_ros.training import world
from vispeak_ros.training.data import build_sample, encode_stream, plan_answers, stream_blocks

HELDOUT_SEED = 7
HELDOUT_SIZE = (240, 240)
NONE_DURATION_S = 60.0
MAX_ANSWER = 24  # tokens: the longest answer the world scores (anomaly warning, 10 words) fits with room
NONE_LABEL = "none"
UNKNOWN_LABEL = "unknown"
_LABELS = {behaviour: scenario for scenario, behaviour in world.BEHAVIOURS.items()}


def behaviour_of(text: str) -> str:
    """The event type an answer's text stands for (the world's scenario name), `unknown` when none matches."""
    for behaviour, answer in world.ANSWER_TEXTS.items():
        if behaviour == Behaviour.VISUAL_REFERENCE:
            prefix = answer.split("{")[0]
            if text.startswith(prefix) and text.endswith("."):
                return _LABELS[behaviour]
        elif text == answer:
            return _LABELS[behaviour]
    return UNKNOWN_LABEL


def heldout_streams(
    per_scenario: int = 6,
    seed: int = HELDOUT_SEED,
    size: tuple[int, int] = HELDOUT_SIZE,
    none_duration_s: float = NONE_DURATION_S,
) -> list[world.Stream]:
    """The fixed held-out set: `per_scenario` streams of each scenario from the held-out split (its own seeds and
    background palette), square frames at 1 fps (only the frame at each whole second is used). Event-free streams
    last `none_duration_s` each, so that false triggers per minute rest on minutes of video."""
    seeds = world.split_seeds(per_scenario * len(world.SCENARIOS), seed, "heldout")
    streams = []
    for i, s in enumerate(seeds):
        scenario = world.SCENARIOS[i % len(world.SCENARIOS)]
        duration = none_duration_s if scenario == "none" else None
        streams.append(world.generate(scenario, s, "heldout", duration, size=size, fps=1.0))
    return streams


@dataclass
class SpokenAnswer:
    time: float  # the frame time (proactive) or text time (reactive) of the deciding seg row
    text: str
    proactive: bool


@dataclass
class StreamResult:
    name: str
    scenario: str
    duration_s: float
    answers: list[SpokenAnswer]


@torch.no_grad()
def run_stream(
    model: ViSpeakForCausalLM, stream: world.Stream, reactive: bool | None = None, max_answer_tokens: int = MAX_ANSWER
) -> StreamResult:
    """Feed one stream through a fresh `StreamingSession`; collect every answer with its decision time. Answers are
    cut at `max_answer_tokens` (every world answer to score is shorter), so an untrained model cannot stall it."""
    tok = model.tokenizer
    if tok is None:
        raise ValueError("the model has no tokenizer")
    specials = tok.special_tokens()
    feats = encode_stream(model, stream)
    blocks = stream_blocks(stream, StreamTemplate(tok))
    prefill = plan_answers(stream, blocks, small_talk=True, events=False)
    sample = build_sample(stream, tok, prefill)
    images = model.mm_projector(feats.vision.to(model.dtype))
    user = model.embed_user_stream(sample.user_ids, images, feats.audio.to(model.dtype))
    if reactive is None:
        reactive = any(e.behaviour == Behaviour.VISUAL_REFERENCE for e in stream.events)
    session = StreamingSession(model, specials, reactive=reactive, max_answer_tokens=max_answer_tokens)
    ends = sample.block_ends
    last_prefill = max((ends[a.block] + len(tok.encode(a.text)) + 2 for a in prefill), default=ends[0])
    first = next(i for i, end in enumerate(ends) if end >= last_prefill) if prefill else 0
    start_rows = ends[first] + 1
    session.start(
        [user[: ends[0] + 1], user[ends[0] + 1 : start_rows]] if first else [user[:start_rows]],
        sample.agent_ids[:start_rows].tolist(),
    )
    answers: list[SpokenAnswer] = []
    pending: SpokenAnswer | None = None
    for i in range(first + 1, len(blocks)):
        result = session.feed(user[ends[i - 1] + 1 : ends[i] + 1], kind=blocks[i].kind)
        if pending is not None and result.finished:
            pending.text = tok.decode_answer(session.answer)
            answers.append(pending)
            pending = None
        if result.started:
            block = blocks[i]
            pending = SpokenAnswer(block.time, "", session.answer[0] == specials.proactive)
    if pending is not None:
        session.finish(64)
        pending.text = tok.decode_answer(session.answer)
        answers.append(pending)
    return StreamResult(stream.name, stream.scenario, stream.duration_s, answers)


@dataclass
class Report:
    """Held-out figures; `as_dict` for JSON, `summary` for a console."""

    streams: int
    time_accuracy: dict[str, float]
    text_exact: dict[str, float]
    type_accuracy: dict[str, float]
    confusion: dict[str, dict[str, int]]
    false_triggers_per_min: float
    repeat_answers: int
    results: list[StreamResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "streams": self.streams,
            "time_accuracy": self.time_accuracy,
            "text_exact": self.text_exact,
            "type_accuracy": self.type_accuracy,
            "confusion": self.confusion,
            "false_triggers_per_min": self.false_triggers_per_min,
            "repeat_answers": self.repeat_answers,
        }

    def summary(self) -> str:
        lines = [f"held-out streams: {self.streams}"]
        for name in self.time_accuracy:
            lines.append(
                f"  {name:10s} time acc {self.time_accuracy[name]:.2f}  text exact {self.text_exact[name]:.2f}  "
                f"type acc {self.type_accuracy[name]:.2f}"
            )
        lines.append(f"  none       false triggers/min {self.false_triggers_per_min:.3f}")
        lines.append(f"  repeated answers to one event: {self.repeat_answers}")
        labels = sorted({p for row in self.confusion.values() for p in row})
        lines.append("  confusion (rows: true, cols: typed from the first answer): " + " ".join(labels))
        for true, row in self.confusion.items():
            lines.append(f"    {true:10s} " + " ".join(str(row.get(p, 0)) for p in labels))
        return "\n".join(lines)


def score(streams: Sequence[world.Stream], results: Sequence[StreamResult]) -> Report:
    """Figures from per-stream answers: the first answer at or after the event's clip start is the response."""
    time_hits: dict[str, list[bool]] = {}
    text_hits: dict[str, list[bool]] = {}
    type_hits: dict[str, list[bool]] = {}
    confusion: dict[str, dict[str, int]] = {}
    false_answers = 0
    none_seconds = 0.0
    repeats = 0
    for stream, result in zip(streams, results, strict=True):
        if not stream.events:
            false_answers += len(result.answers)
            none_seconds += stream.duration_s
            continue
        for event in stream.events:
            name = event.scenario
            t2 = event.timespan[1]
            mine = [a for a in result.answers if event.clip[0] <= a.time < event.clip[1]]
            first = mine[0] if mine else None
            predicted = NONE_LABEL if first is None else behaviour_of(first.text)
            time_hits.setdefault(name, []).append(first is not None and event.timely(first.time))
            text_hits.setdefault(name, []).append(first is not None and first.text == event.answer)
            type_hits.setdefault(name, []).append(predicted == name)
            row = confusion.setdefault(name, {})
            row[predicted] = row.get(predicted, 0) + 1
            repeats += sum(1 for a in mine[1:] if behaviour_of(a.text) == name and a.time <= t2 + 2.0)

    def mean(hits: dict[str, list[bool]]) -> dict[str, float]:
        return {k: round(sum(v) / len(v), 3) for k, v in sorted(hits.items())}

    per_min = false_answers / (none_seconds / 60.0) if none_seconds else 0.0
    return Report(
        streams=len(streams),
        time_accuracy=mean(time_hits),
        text_exact=mean(text_hits),
        type_accuracy=mean(type_hits),
        confusion={k: confusion[k] for k in sorted(confusion)},
        false_triggers_per_min=round(per_min, 3),
        repeat_answers=repeats,
        results=list(results),
    )


def evaluate(model: ViSpeakForCausalLM, streams: Sequence[world.Stream]) -> Report:
    """Run every stream through the streaming session and score it."""
    model.eval()
    return score(streams, [run_stream(model, s) for s in streams])
