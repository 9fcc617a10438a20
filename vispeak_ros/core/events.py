"""What the assistant can say it saw: the seven ViSpeak behaviours, answer triggers, and typed events.

The numeric values equal the constants of msg/Event.msg and msg/Feedback.msg (a test checks this), so
conversions to and from messages are plain casts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Behaviour(IntEnum):
    """The behaviour an answer is typed as (Event.msg `type`)."""

    NONE = 0
    WAKE_UP = 1
    ANOMALY = 2
    GESTURE = 3
    VISUAL_REFERENCE = 4
    INTERRUPTION = 5
    HUMOR = 6
    TERMINATION = 7


class Trigger(IntEnum):
    """What an answer responds to, read from the start marker the model emitted (Feedback.msg `trigger`)."""

    TEXT = 0  # ☜ answer to a text question
    AUDIO = 1  # ☞ answer to a spoken question
    VISUAL = 2  # ☟ proactive answer to something the camera saw


@dataclass(frozen=True)
class Event:
    """An answer typed as a behaviour, stamped in stream time at the segment that triggered it."""

    behaviour: Behaviour
    confidence: float
    text: str
    answer_id: int
    segment_index: int
    stamp_ns: int

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"event confidence must be in [0, 1], got {self.confidence}")
