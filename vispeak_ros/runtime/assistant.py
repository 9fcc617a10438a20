"""The assistant's brain: the decision loop over `Segment`s, independent of ROS, synchronous and deterministic.

`Assistant.process(segment)` feeds one second of stream to the backend as blocks, in this order (the layout the
demo model is trained on):
1. **frame block** (when the segment has a frame): visual rows + seg. Its seg row takes the proactive decision:
   the informative probability at the frame's last visual token goes into the trigger queue (sum of the last 3 >
   threshold); when it fires the answer starts with ☟ forced. Only frame blocks push into the queue (the official
   loop pushes at every seg row; with audio and text blocks in between that would dilute the rule with
   probabilities the head was never trained on).
2. **audio block** (when any audio arrived: `audio_coverage > 0`; a second with no audio at all is skipped, a quiet
   but present second is fed, as in training): 12 audio rows + seg. With `audio_questions` on, reactive decision:
   speak when the argmax at the seg row is not pad; the emitted token is the marker (☞ expected). Off by default:
   the demo model's audio seg rows carry no LM label (their argmax is arbitrary: an intermediate checkpoint
   "answered" every second there), and ViSpeak-Bench feeds no audio; turn it on for weights trained on spoken
   questions.
3. **text blocks**, one per user text in the segment: ids + seg, reactive decision (☜ expected).
Precedence: decisions are taken at seg rows in this order and only while silent, so when a frame triggers, the
proactive answer runs and the audio/text rows of the same segment are watched while speaking (no second answer
starts). A frame trigger while an answer runs pre-empts it (trained alignment): the running answer is cut, the
speech sink is told to stop at once (`SpeechCancel`), and a new ☟ answer starts at that seg row.

Alignment (`config.alignment`): "trained" (default): each answer token is the agent input of the next user row,
so an answer's later words wait for the next blocks' rows, as ViSpeak was trained. "pad": once an answer starts,
it is generated to its end at once over pad user rows (lower latency, not the trained distribution; no
pre-emption by triggers, only `interrupt()`).

Every answer is streamed as sentence-sized `FeedbackChunk`s, then a `FinalAnswer`; answers that end normally are
typed (`event_typing`) and a `TypedEvent` is emitted. The session state machine follows:
- answer start -> ANSWER_STARTED; normal end -> ANSWER_FINISHED;
- WAKE_UP event -> WAKE_UP; TERMINATION -> TERMINATE then SETTLE (idle once the farewell is generated);
- any other answer that started while idle (an anomaly warning) -> RESET, back to idle;
- a cut (pre-emption or `interrupt()`) -> INTERRUPT, then the new answer's ANSWER_STARTED or RESUME at the next
  segment; an INTERRUPTION event also tells the speech sink to stop every earlier answer.
The session re-arms after every answer (many answers per session). All stamps are stream time; nothing here reads
a wall clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vispeak_ros.core.events import Behaviour, Event, Trigger
from vispeak_ros.core.segmenter import Segment
from vispeak_ros.core.session_state import SessionMachine, SessionState, Transition
from vispeak_ros.runtime.backends.base import Backend, BlockKind, StepResult
from vispeak_ros.runtime.chunking import SentenceChunker
from vispeak_ros.runtime.config import RuntimeConfig
from vispeak_ros.runtime.event_typing import EventTyper, Typing
from vispeak_ros.runtime.outputs import (
    FeedbackChunk,
    FinalAnswer,
    InformativeRecord,
    Output,
    SpeechCancel,
    StateChange,
    TypedEvent,
)

PAD_STEP_TOKENS = 8  # pad alignment: tokens per backend call, so an interrupt request is seen between calls
_KIND_TRIGGER: dict[str, Trigger] = {"frame": Trigger.VISUAL, "audio": Trigger.AUDIO, "text": Trigger.TEXT}


@dataclass
class _Answer:
    answer_id: int
    trigger: Trigger
    marker: str
    segment_index: int
    stamp_ns: int
    informative: float | None
    from_idle: bool = False  # nobody had woken the assistant when this answer started
    typing: Typing | None = None  # typed at the start (word-level vocabularies), else after the end
    ids: tuple[int, ...] = ()
    sent: str = ""  # decoded text already handed to the chunker
    chunker: SentenceChunker = field(default_factory=SentenceChunker)


class Assistant:
    """One stream's decision loop over a backend. Not thread-safe: one worker owns it (see `worker.Worker`)."""

    def __init__(self, config: RuntimeConfig, backend: Backend | None = None) -> None:
        self.config = config
        self.backend = backend if backend is not None else _backend_from_config(config)
        self.typer = EventTyper(self.backend, config.enabled_behaviours)
        self._out: list[Output] = []
        self._emit: Callable[[Output], None] | None = None
        self._where = (-1, 0)  # (segment index, stamp) the current outputs belong to
        self.machine = SessionMachine(self._on_state)
        self.answer: _Answer | None = None
        self.answers = 0
        self._idle_before_cut = False
        self.cancel_requested: Callable[[], bool] = lambda: False  # set by the worker (pad alignment only)
        tokens = self.backend.tokens
        from vispeak_ros.model.prompts import SYSTEM_PROMPTS  # strings only; no torch at this point

        self.backend.start([*self.backend.tokenizer.encode(SYSTEM_PROMPTS[config.system_prompt]), tokens.seg])

    @classmethod
    def from_model(cls, model, tokenizer, config: RuntimeConfig) -> Assistant:
        """An assistant over an already loaded model (tests, benchmarks, a node that loaded the model itself)."""
        from vispeak_ros.runtime.backends.torch_backend import TorchBackend

        backend = TorchBackend(
            model,
            tokenizer,
            threshold=config.trigger_threshold,
            window_segments=config.window_segments,
            max_answer_tokens=config.max_answer_tokens,
            release=config.trigger_release,
            audio_questions=config.audio_questions,
        )
        return cls(config, backend)

    @property
    def state(self) -> SessionState:
        return self.machine.state

    def set_trigger_threshold(self, threshold: float) -> None:
        """Change the proactive threshold while the stream runs (thread-safe: a float the next frame reads)."""
        self.config = self.config.with_overrides(trigger_threshold=threshold)
        self.backend.set_trigger_threshold(self.config.trigger_threshold)

    # ----------------------------------------------------------------- the loop
    def process(self, segment: Segment, emit: Callable[[Output], None] | None = None) -> list[Output]:
        """Feed one segment; return its outputs in order (also handed to `emit` as soon as each is made)."""
        self._begin(segment.index, segment.end_ns, emit)
        if self.state is SessionState.INTERRUPTED and self.answer is None:
            self._apply(Transition.RESUME)
        blocks: list[tuple[BlockKind, object, int]] = []
        if segment.frame is not None:
            stamp = segment.frame_stamp_ns if segment.frame_stamp_ns is not None else segment.end_ns
            blocks.append(("frame", lambda: self.backend.frame_block(segment.frame), stamp))
        if segment.audio_coverage > 0.0:
            blocks.append(("audio", lambda: self.backend.audio_block(segment.audio), segment.end_ns))
        for text in segment.texts:
            ids = self.backend.tokenizer.encode(text.text)
            blocks.append(("text", lambda ids=ids: self.backend.text_block(ids), text.stamp_ns))
        for kind, make_rows, stamp in blocks:
            speaking = self.answer is not None
            result = self.backend.step(make_rows(), kind)
            if result.trigger is not None:
                t = result.trigger
                self._put(
                    InformativeRecord(
                        segment.index, stamp, t.probability, t.running_sum, t.threshold, t.fired, speaking
                    )
                )
            self._handle(result, kind, segment.index, stamp)
            self._speak_on_if_pad()
        return self._end()

    def interrupt(self, reason: str = "interrupted", emit: Callable[[Output], None] | None = None) -> list[Output]:
        """Cut the running answer from outside (a stop button, a controller); outputs stamped at the last segment."""
        self._begin(*self._where, emit)
        self._cut(reason)
        return self._end()

    def _cut(self, reason: str) -> None:
        cut = self.backend.cancel()
        if cut is not None and self.answer is not None:
            self.answer.ids = cut
            self._close(self.answer, reason)
            self._put(SpeechCancel(self.answers - 1, reason, *self._where))
            self._apply(Transition.INTERRUPT)

    # ----------------------------------------------------------------- answers
    def _handle(self, result: StepResult, kind: BlockKind, index: int, stamp: int) -> None:
        if self.answer is not None and result.previous_ids is not None:
            self._extend(self.answer, result.previous_ids)
            if result.ended is not None:
                old = self.answer
                self._close(old, result.ended)
                if result.ended == "preempted":
                    self._idle_before_cut = old.from_idle
                    self._put(SpeechCancel(old.answer_id, "preempted", *self._where))
                    self._apply(Transition.INTERRUPT)
                else:
                    self._finish(old)
        if result.started_ids is not None:
            self._open(result, kind, index, stamp)

    def _open(self, result: StepResult, kind: BlockKind, index: int, stamp: int) -> None:
        tokens = self.backend.tokens
        marker_id = result.started_ids[0]
        trigger = {
            tokens.text_answer: Trigger.TEXT,
            tokens.audio_answer: Trigger.AUDIO,
            tokens.proactive: Trigger.VISUAL,
        }.get(marker_id, _KIND_TRIGGER[kind])
        marker = self.backend.tokenizer.decode([marker_id], skip_special_tokens=False)
        informative = result.informative_prob if kind == "frame" else None
        from_idle = self.state is SessionState.IDLE or (self.answer is None and self._idle_before_cut)
        self.answer = _Answer(
            self.answers, trigger, marker, index, stamp, informative, from_idle, ids=result.started_ids
        )
        self.answers += 1
        if self.typer.uses_marker:
            self.answer.typing = self.typer.type_at_start(marker_id)
        self._apply(Transition.ANSWER_STARTED)

    def _extend(self, answer: _Answer, ids: tuple[int, ...]) -> None:
        """New tokens of a running answer -> completed sentences out as chunks."""
        answer.ids = ids
        text = self.backend.tokenizer.decode_answer(list(ids))
        if text.startswith(answer.sent):
            delta, answer.sent = text[len(answer.sent) :], text
            for chunk in answer.chunker.feed(delta):
                self._put(self._chunk(answer, chunk, partial=True))

    def _close(self, answer: _Answer, reason: str) -> None:
        """The answer ended (or was cut): last chunk (only when it ended normally) and the final answer."""
        self._extend(answer, answer.ids)
        if reason in ("im_end", "length"):
            self._put(self._chunk(answer, " ".join(answer.chunker.finish()), partial=False))
        text = self.backend.tokenizer.decode_answer(list(answer.ids))
        self._put(
            FinalAnswer(
                answer.answer_id,
                text,
                answer.ids,
                reason,
                answer.trigger,
                answer.marker,
                answer.segment_index,
                answer.stamp_ns,
                *self._where,
            )
        )
        self.answer = None

    def _finish(self, answer: _Answer) -> None:
        """A normally ended answer: state back to awake, then type it and let the state follow the event."""
        self._apply(Transition.ANSWER_FINISHED)
        typing = answer.typing or self.typer.type_answer(answer.ids[0] if answer.ids else None)
        text = self.backend.tokenizer.decode_answer(list(answer.ids))
        event = Event(
            typing.behaviour, typing.confidence, text, answer.answer_id, answer.segment_index, answer.stamp_ns
        )
        self._put(TypedEvent(event, typing.scores))
        if typing.behaviour is Behaviour.WAKE_UP:
            self._apply(Transition.WAKE_UP)
        elif typing.behaviour is Behaviour.TERMINATION:
            self._apply(Transition.TERMINATE)
            self._apply(Transition.SETTLE)  # the farewell has been generated: back to idle
        elif answer.from_idle:  # e.g. an anomaly warning to nobody in particular: back to idle
            self._apply(Transition.RESET)
        if typing.behaviour is Behaviour.INTERRUPTION and answer.answer_id > 0:
            self._put(SpeechCancel(answer.answer_id - 1, "interruption_event", *self._where))

    def _speak_on_if_pad(self) -> None:
        if self.config.alignment != "pad":
            return
        while self.answer is not None and self.backend.speaking:
            if self.cancel_requested():
                self._cut("interrupted")
                return
            self._handle(self.backend.speak_on(PAD_STEP_TOKENS), "frame", *self._where)

    def _chunk(self, answer: _Answer, text: str, partial: bool) -> FeedbackChunk:
        return FeedbackChunk(
            answer.answer_id,
            text,
            partial,
            answer.trigger,
            answer.marker,
            answer.segment_index,
            answer.stamp_ns,
            answer.informative,
            *self._where,
        )

    # ----------------------------------------------------------------- plumbing
    def _begin(self, index: int, stamp: int, emit: Callable[[Output], None] | None) -> None:
        self._where, self._emit, self._out = (index, stamp), emit, []

    def _end(self) -> list[Output]:
        out, self._out = self._out, []
        return out

    def _put(self, output: Output) -> None:
        self._out.append(output)
        if self._emit is not None:
            self._emit(output)

    def _apply(self, transition: Transition) -> None:
        if self.machine.can(transition):
            self.machine.apply(transition)

    def _on_state(self, before: SessionState, after: SessionState, transition: Transition) -> None:
        self._put(StateChange(*self._where, before, after, transition))


def _backend_from_config(config: RuntimeConfig) -> Backend:
    """The configured backend over the configured checkpoint (`backends.factory`; `auto` logs what it chose)."""
    from vispeak_ros.runtime.backends.factory import create_backend

    return create_backend(config)
