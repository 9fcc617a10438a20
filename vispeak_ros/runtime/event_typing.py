"""Typing an answer as one of the seven behaviours (or none) with the LLM itself, so it works with the official
weights as they are (no classifier head was trained for it).

After an answer ends, the agent stream is continued, over pad user rows, with a fixed prompt and one label phrase
per candidate ("This is about: greeting", "... danger", ...; `LABEL_PHRASES`). Each candidate's score is the mean
log-probability of its label tokens; the confidence is the softmax over the candidates' scores, taken at the
winner. Scoring runs on top of the live KV cache and restores it afterwards (`Backend.score`), so the session
continues exactly as if no scoring had happened. A "nothing" label competes too: when it wins, or when the winner
is a disabled behaviour, the event is NONE. Cost: one small prefill per candidate (prompt + label, about 8 rows).

Word-level vocabularies (the demo model's) cannot spell the prompt; then the phrases are the opening words of the
world's answers, scored right when the answer starts, after its marker (`type_at_start`): the model's own
preference among the openings, from the same cache state that decided to speak (then restored, as above).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from vispeak_ros.core.events import Behaviour
from vispeak_ros.runtime.backends.base import Backend

PROMPTS: tuple[str, ...] = ("This is about:", "")  # the first one the tokenizer can spell is used
PROMPT = PROMPTS[0]
# Per behaviour, alternative label phrases; the first one the tokenizer spells without unknown tokens is used. The
# first words suit a full LLM vocabulary (the official Qwen2.5 tokenizer); the later ones are the opening words of
# the synthetic world's answers, for word-level tokenizers such as the demo model's. A behaviour with no spellable
# phrase cannot be typed and is left out of the candidates.
LABEL_PHRASES: dict[Behaviour, tuple[str, ...]] = {
    Behaviour.WAKE_UP: ("greeting", "Hello!"),
    Behaviour.ANOMALY: ("danger", "Watch"),
    Behaviour.GESTURE: ("gesture", "Nice"),
    Behaviour.VISUAL_REFERENCE: ("object", "That"),
    Behaviour.INTERRUPTION: ("stop", "Okay,"),
    Behaviour.HUMOR: ("joke",),
    Behaviour.TERMINATION: ("goodbye", "Goodbye,"),
    Behaviour.NONE: ("nothing",),
}
LABEL_WORDS: dict[Behaviour, str] = {b: phrases[0] for b, phrases in LABEL_PHRASES.items()}


def spellable(tokenizer, text: str) -> list[int] | None:
    """The ids of `text` when they decode back to it (no unknown tokens), else None."""
    ids = tokenizer.encode(text)
    back = tokenizer.decode(ids, skip_special_tokens=False)
    return ids if " ".join(back.split()) == " ".join(text.split()) else None


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
        prompts: tuple[str, ...] = PROMPTS,
        words: dict[Behaviour, str | tuple[str, ...]] | None = None,
    ) -> None:
        self.backend = backend
        self.enabled = frozenset(enabled)
        tok = backend.tokenizer
        prompt_ids = next((ids for p in prompts if (ids := spellable(tok, p)) is not None), [])
        self.prefix = [backend.tokens.im_end, *prompt_ids]  # the answer has ended: scoring follows im_end
        self.uses_marker = not prompt_ids  # no prompt: the phrases are an answer's first words, after its marker
        self.labels: list[tuple[Behaviour, tuple[int, ...]]] = []
        for behaviour, phrases in (LABEL_PHRASES if words is None else words).items():
            for phrase in (phrases,) if isinstance(phrases, str) else phrases:
                ids = spellable(tok, (" " + phrase) if prompt_ids else phrase)
                if ids:
                    self.labels.append((behaviour, tuple(ids)))
                    break
        if not self.labels:
            raise ValueError("no label phrase can be spelled by this tokenizer")

    def type_answer(self, marker: int | None = None) -> Typing:
        """Type the answer that just ended (it is the latest content of the backend's cache); `marker` is the
        answer's first token, used when the tokenizer cannot spell the prompt."""
        prefix = [*self.prefix, marker] if self.uses_marker and marker is not None else self.prefix
        return self._type(prefix)

    def type_at_start(self, marker: int) -> Typing:
        """Type an answer as it starts (the cache ends at the seg row that started it): the model's own preference
        among the opening phrases after its marker. Used for word-level vocabularies (`uses_marker`)."""
        return self._type([marker])

    def _type(self, prefix: list[int]) -> Typing:
        scores = self.backend.score(prefix, [ids for _, ids in self.labels])
        best = max(range(len(scores)), key=lambda i: scores[i])
        top = max(scores)
        total = sum(math.exp(s - top) for s in scores)
        confidence = min(1.0, max(0.0, 1.0 / total))
        behaviour = self.labels[best][0]
        if behaviour not in self.enabled:
            behaviour = Behaviour.NONE
        named = tuple((b.name.lower(), s) for (b, _), s in zip(self.labels, scores, strict=True))
        return Typing(behaviour, confidence, named)
