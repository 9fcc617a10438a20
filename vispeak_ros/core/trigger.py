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
    """The official rule, with an optional release latch (`release` < 1, config `trigger_release`).

    With the latch, after an answer the trigger stays disarmed until a frame's probability falls below `release`:
    the head is trained to stay high over the second half of an event window, so a re-armed rule could answer the
    same event again, or pre-empt an answer with the very event it answers. One event, one answer. `release`
    1.0 (the default) is the plain re-armed rule.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, length: int = QUEUE_LENGTH, release: float = 1.0) -> None:
        self.threshold = threshold
        self.release = release
        self.latched = False
        self._recent: deque[float] = deque(maxlen=length)

    def push(self, probability: float) -> TriggerDecision:
        """Record one frame's informative probability and say whether the assistant should speak now."""
        p = float(probability)
        if self.latched and p < self.release:
            self.latched = False
            self._recent.clear()  # evidence from the answered event does not count for the next one
        self._recent.append(p)
        total = sum(self._recent)
        return TriggerDecision(p, total, self.threshold, total > self.threshold and not self.latched)

    def rearm(self) -> None:
        """Forget the probabilities that led to an answer (and latch, when a release level is set)."""
        self._recent.clear()
        self.latched = self.release < 1.0
