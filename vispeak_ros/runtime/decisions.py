"""Decision-rule options on top of the official trigger (`core.trigger.TriggerRule`).

`LatchedTrigger` (config `trigger_release` < 1): after an answer starts, the proactive trigger stays disarmed
until a frame's informative probability falls below `release`. The official loop answers once per call; a
continuous stream that only clears the queue (`rearm`) can answer the same event again while it is still on
screen (the head is trained to stay high over the second half of the event window), and a running answer can be
pre-empted by the very event it answers. The latch makes it one event, one answer. With `release` 1.0 (the
default) it is the plain re-armed rule.
"""

from __future__ import annotations

from collections import deque

from vispeak_ros.core.trigger import DEFAULT_THRESHOLD, QUEUE_LENGTH, TriggerDecision


class LatchedTrigger:
    """The official rule (sum of the last 3 probabilities > threshold) with a release latch after each answer.
    Same interface as `TriggerRule` (`push`, `rearm`), so a session can use either."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, release: float = 1.0, length: int = QUEUE_LENGTH) -> None:
        self.threshold = threshold
        self.release = release
        self.latched = False
        self._recent: deque[float] = deque(maxlen=length)

    def push(self, probability: float) -> TriggerDecision:
        p = float(probability)
        if self.latched and p < self.release:
            self.latched = False
            self._recent.clear()  # evidence from the answered event does not count for the next one
        self._recent.append(p)
        total = sum(self._recent)
        return TriggerDecision(p, total, self.threshold, total > self.threshold and not self.latched)

    def rearm(self) -> None:
        """Called when an answer starts or ends: forget the evidence, and latch until the probability falls."""
        self._recent.clear()
        self.latched = self.release < 1.0
