"""Typing an answer as one of the seven behaviours (or none) with the LLM itself, so it works with the official
weights as they are (no classifier head was trained for it).

After an answer ends, the agent stream is continued, over pad user rows, with a fixed prompt and one label word per
candidate ("This is about: greeting", "... danger", ...). Each candidate's score is the mean log-probability of
its label tokens; the confidence is the softmax over the candidates' scores, taken at the winner. Scoring runs on
top of the live KV cache and restores it afterwards (`Backend.score`), so the session continues exactly as if no
scoring had happened. A "nothing" label competes too: when it wins, or when the winner is a disabled behaviour,
the event is NONE. Cost: one small prefill per candidate (prompt + label rows, about 8 rows each).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from vispeak_ros.core.events import Behaviour
from vispeak_ros.runtime.backends.base import Backend

PROMPT = "This is about:"
LABEL_WORDS: dict[Behaviour, str] = {
    Behaviour.WAKE_UP: "greeting",
    Behaviour.ANOMALY: "danger",
    Behaviour.GESTURE: "gesture",
    Behaviour.VISUAL_REFERENCE: "object",
    Behaviour.INTERRUPTION: "stop",
    Behaviour.HUMOR: "joke",
    Behaviour.TERMINATION: "goodbye",
    Behaviour.NONE: "nothing",
}


@dataclass(frozen=True)
class Typing:
    behaviour: Behaviour
    confidence: float
    scores: tuple[tuple[str, float], ...]


class EventTyper:
    """Scores the label words of every behaviour (plus NONE) after an answer; see the module docstring."""

    def __init__(
        self,
        backend: Backend,
        enabled: Iterable[Behaviour],
        *,
        prompt: str = PROMPT,
        words: dict[Behaviour, str] | None = None,
    ) -> None:
        self.backend = backend
        self.enabled = frozenset(enabled)
        words = dict(LABEL_WORDS if words is None else words)
        tok = backend.tokenizer
        self.prefix = [backend.tokens.im_end, *tok.encode(prompt)]  # the answer has ended: scoring follows im_end
        self.labels = [(b, tuple(tok.encode(" " + w))) for b, w in words.items()]
        empty = [b.name for b, ids in self.labels if not ids]
        if empty:
            raise ValueError(f"label words encode to no tokens for {empty}")

    def type_answer(self) -> Typing:
        """Type the answer that just ended (it is the latest content of the backend's cache)."""
        scores = self.backend.score(self.prefix, [ids for _, ids in self.labels])
        best = max(range(len(scores)), key=lambda i: scores[i])
        top = max(scores)
        total = sum(math.exp(s - top) for s in scores)
        confidence = min(1.0, max(0.0, 1.0 / total))
        behaviour = self.labels[best][0]
        if behaviour not in self.enabled:
            behaviour = Behaviour.NONE
        named = tuple((b.name.lower(), s) for (b, _), s in zip(self.labels, scores, strict=True))
        return Typing(behaviour, confidence, named)
