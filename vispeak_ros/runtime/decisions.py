"""When to speak: the official proactive trigger rule, and how answers are cut into chunks for speech.

The trigger follows ViSpeak's inference exactly: at each frame's seg token the informative probability (the
sigmoid of the head's logit at the frame's last visual token) is pushed into a queue of length 3, and the model
speaks when the queue's *sum* exceeds the threshold (0.35 by default). Unlike the official loop, which answers
once per call, the rule re-arms after every answer: the queue is cleared, so a single event does not trigger
twice in a row from the probabilities that already fired it.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class TriggerDecision:
    probability: float
    running_sum: float
    threshold: float
    fired: bool


class TriggerRule:
    def __init__(self, threshold: float = 0.35, length: int = 3) -> None:
        self.threshold = threshold
        self._recent: deque[float] = deque(maxlen=length)

    def push(self, probability: float) -> TriggerDecision:
        """Record one frame's informative probability and say whether the assistant should speak now."""
        self._recent.append(float(probability))
        total = sum(self._recent)
        return TriggerDecision(float(probability), total, self.threshold, total > self.threshold)

    def rearm(self) -> None:
        """Forget the probabilities that led to an answer, so the next answer needs fresh evidence."""
        self._recent.clear()


_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


class SentenceChunker:
    """Cuts streamed answer text into sentence-sized chunks, so TTS can start before the answer ends.

    `feed(text)` takes the decoded answer so far (or a delta) and returns the sentences completed by it;
    `finish()` returns what remains. A chunk is also cut at `max_chars` on a word boundary, so a long answer
    without punctuation still reaches the speaker in pieces.
    """

    def __init__(self, max_chars: int = 200) -> None:
        self.max_chars = max_chars
        self._pending = ""

    def feed(self, delta: str) -> list[str]:
        self._pending += delta
        chunks: list[str] = []
        while True:
            parts = _SENTENCE_END.split(self._pending, maxsplit=1)
            if len(parts) == 2:
                chunks.append(parts[0].strip())
                self._pending = parts[1]
                continue
            if len(self._pending) > self.max_chars:
                cut = self._pending.rfind(" ", 0, self.max_chars)
                cut = cut if cut > 0 else self.max_chars
                chunks.append(self._pending[:cut].strip())
                self._pending = self._pending[cut:].lstrip()
                continue
            break
        return [c for c in chunks if c]

    def finish(self) -> list[str]:
        rest, self._pending = self._pending.strip(), ""
        return [rest] if rest else []
