"""What the runtime emits, stamped in stream time only (so replay is deterministic); wall-clock latency is kept
apart, by the worker (`worker.Processed`)."""

from __future__ import annotations

from dataclasses import dataclass

from vispeak_ros.core.events import Event, Trigger
from vispeak_ros.core.session_state import SessionState, Transition


@dataclass(frozen=True)
class FeedbackChunk:
    """A sentence-sized piece of an answer, for TTS. `partial` is False on the answer's last chunk only (whose text
    may be empty: it then only marks the end). A cut answer gets no last chunk but a `SpeechCancel`."""

    answer_id: int
    text: str
    partial: bool
    trigger: Trigger
    marker: str  # the marker the model emitted (☜ ☞ ☟), or the raw token text when it emitted something else
    answer_segment_index: int  # the segment whose seg row started the answer
    answer_stamp_ns: int  # the response time: the triggering frame's stamp (segment end when it had no frame)
    informative: float | None  # the informative probability at the trigger (frame-triggered answers)
    segment_index: int  # the segment being processed when this chunk was complete
    stamp_ns: int  # that segment's end, in stream time


@dataclass(frozen=True)
class FinalAnswer:
    """A whole answer once it ended: `reason` is "im_end", "length", "preempted" (cut by a newer trigger) or
    "interrupted" (cut from outside)."""

    answer_id: int
    text: str
    token_ids: tuple[int, ...]
    reason: str
    trigger: Trigger
    marker: str
    answer_segment_index: int
    answer_stamp_ns: int
    segment_index: int
    stamp_ns: int


@dataclass(frozen=True)
class TypedEvent:
    """An answer typed as a behaviour (`event.behaviour` NONE when no enabled label won), with every label's score."""

    event: Event
    scores: tuple[tuple[str, float], ...]  # (label name, mean log-probability), in label order


@dataclass(frozen=True)
class InformativeRecord:
    """The trigger rule at one frame block's seg row."""

    segment_index: int
    stamp_ns: int
    probability: float
    running_sum: float
    threshold: float
    triggered: bool
    speaking: bool  # taken while an answer was running (a firing trigger pre-empts it)


@dataclass(frozen=True)
class StateChange:
    segment_index: int
    stamp_ns: int
    before: SessionState
    after: SessionState
    transition: Transition


@dataclass(frozen=True)
class SpeechCancel:
    """Stop speaking now: every answer with an id up to `up_to_answer_id` must be silenced at once."""

    up_to_answer_id: int
    reason: str  # "preempted", "interrupted" or "interruption_event"
    segment_index: int
    stamp_ns: int


Output = FeedbackChunk | FinalAnswer | TypedEvent | InformativeRecord | StateChange | SpeechCancel
