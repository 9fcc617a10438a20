"""The official proactive trigger rule: speak when the sum of the last three informative probabilities exceeds
the threshold (0.35 by default; a sum of up to three probabilities, not a mean).

ViSpeak's inference pushes, at each seg token, the sigmoid of the informative logit of the row before it. Unlike
the official loop, which answers once per call, a continuous stream re-arms after every answer (`rearm()` clears
the queue), so one event does not trigger twice on the evidence that already fired it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

DEFAULT_THRESHOLD = 0.35
QUEUE_LENGTH = 3


@dataclass(frozen=True)
class TriggerDecision:
    probability: float
    running_sum: float
    threshold: float
    fired: bool


class TriggerRule:
    def __init__(self, threshold: float = DEFAULT_THRESHOLD, length: int = QUEUE_LENGTH) -> None:
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
