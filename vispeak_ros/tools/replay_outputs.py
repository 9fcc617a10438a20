"""What the assistant said during a replay, gathered from its output messages, whichever way they came.

Both modes end with the same messages: fast mode makes them in-process (`write_output` turns runtime outputs into
vispeak_ros/msg Feedback, Event and Informative in the output recording), paced mode records them from the node
over DDS. `Collector` reads those messages only, so the printed lines, the timeline and the ground-truth summary
are built the same way in both modes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from vispeak_ros.core.clock import NS_PER_S
from vispeak_ros.core.events import Behaviour
from vispeak_ros.tools.output_bag import EVENTS_TOPIC, FEEDBACK_TOPIC, INFORMATIVE_TOPIC, OutputBag
from vispeak_ros.tools.replay_annotations import TruthWindow
from vispeak_ros.tools.timeline import TIMELY_MARGIN_S, AnswerMark, ScorePoint, Window

SPEAKER = {0: "text", 1: "audio", 2: "visual"}


def _ns(stamp: Any) -> int:
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


@dataclass(frozen=True)
class Answer:
    """A whole answer (the final Feedback message): when it started (trigger stamp, seconds from the origin)."""

    answer_id: int
    t: float
    text: str
    trigger: int


@dataclass(frozen=True)
class TypedAnswer:
    """An Event message: the answer typed as a behaviour."""

    answer_id: int
    t: float
    behaviour: str
    confidence: float
    text: str


@dataclass(frozen=True)
class Verdict:
    window: TruthWindow
    answered_at: float | None  # the first answer of the right type in [max(0, t1), t2 + 2 s]
    other: str = ""  # else: an answer of another type in the window, e.g. "GESTURE at 22.0 s"


def write_output(bag: OutputBag, emitted: Any) -> None:
    """A runtime output (`runtime.worker.Emitted`) as the node would publish it; other outputs are not recorded."""
    from vispeak_ros.runtime.outputs import FeedbackChunk, FinalAnswer, InformativeRecord, TypedEvent

    out = emitted.output
    if isinstance(out, InformativeRecord):
        bag.informative(out.stamp_ns, out.segment_index, out.probability, out.running_sum, out.threshold,
                        out.triggered)  # fmt: skip
    elif isinstance(out, FeedbackChunk):
        bag.feedback(out.stamp_ns, out.text, True, out.answer_id, out.trigger, out.answer_segment_index,
                     out.answer_stamp_ns, out.informative or 0.0, emitted.latency_s)  # fmt: skip
    elif isinstance(out, FinalAnswer):
        bag.feedback(out.stamp_ns, out.text, False, out.answer_id, out.trigger, out.answer_segment_index,
                     out.answer_stamp_ns, 0.0, emitted.latency_s)  # fmt: skip
    elif isinstance(out, TypedEvent):
        event = out.event
        bag.event(event.stamp_ns, event.behaviour, event.confidence, event.text, event.answer_id,
                  event.segment_index)  # fmt: skip


class Collector:
    """Feed it `(topic, message)` of the output topics; it prints answers and events and keeps the timeline."""

    def __init__(
        self, origin_ns: int | None = None, out: TextIO | None = None, before_print: Callable[[], None] | None = None
    ) -> None:
        self.origin_ns = origin_ns
        self.out = out
        self.before_print = before_print
        self.scores: list[ScorePoint] = []
        self.answers: list[Answer] = []
        self.events: list[TypedAnswer] = []
        self.threshold: float | None = None

    def seconds(self, stamp_ns: int) -> float:
        if self.origin_ns is None:
            self.origin_ns = stamp_ns
        return (stamp_ns - self.origin_ns) / NS_PER_S

    def _print(self, line: str) -> None:
        if self.out is None:
            return
        if self.before_print is not None:
            self.before_print()
        print(line, file=self.out, flush=True)

    def on_message(self, topic: str, msg: Any) -> None:
        if topic == INFORMATIVE_TOPIC:
            self.threshold = float(msg.threshold)
            self.scores.append(ScorePoint(self.seconds(_ns(msg.header.stamp)), float(msg.probability),
                                          float(msg.running_sum), bool(msg.triggered)))  # fmt: skip
        elif topic == FEEDBACK_TOPIC and not msg.partial:
            answer = Answer(int(msg.answer_id), self.seconds(_ns(msg.trigger_stamp)), str(msg.text), int(msg.trigger))
            self.answers.append(answer)
            who = SPEAKER.get(answer.trigger, str(answer.trigger))
            self._print(f"[{answer.t:6.2f} s] {who:>6} #{answer.answer_id}: {answer.text}")
        elif topic == EVENTS_TOPIC:
            try:
                name = Behaviour(int(msg.type)).name
            except ValueError:
                name = f"TYPE_{int(msg.type)}"
            event = TypedAnswer(int(msg.answer_id), self.seconds(_ns(msg.header.stamp)), name,
                                float(msg.confidence), str(msg.text))  # fmt: skip
            self.events.append(event)
            self._print(f"{'':11}event {name} ({event.confidence:.2f})")

    def marks(self) -> list[AnswerMark]:
        """One mark per answer where it started: labelled with its event type, or its id when it got none."""
        typed = {e.answer_id: e for e in self.events}
        marks = [AnswerMark(e.t, e.text, e.behaviour) for e in self.events]
        marks += [AnswerMark(a.t, a.text, f"#{a.answer_id}") for a in self.answers if a.answer_id not in typed]
        return sorted(marks, key=lambda m: m.t)

    def verdicts(self, windows: Sequence[TruthWindow]) -> list[Verdict]:
        """For each ground-truth window: the first answer typed as its behaviour inside the timely range."""
        out = []
        for window in windows:
            inside = [e for e in self.events if max(0.0, window.t1) <= e.t <= window.t2 + TIMELY_MARGIN_S]
            hits = [e for e in inside if e.behaviour == window.behaviour]
            if hits:
                out.append(Verdict(window, hits[0].t))
            else:
                other = f"{inside[0].behaviour} at {inside[0].t:.1f} s" if inside else ""
                out.append(Verdict(window, None, other))
        return out

    def timeline_windows(self, windows: Sequence[TruthWindow]) -> list[Window]:
        return [Window(w.t1, w.t2, w.behaviour.lower()) for w in windows]
