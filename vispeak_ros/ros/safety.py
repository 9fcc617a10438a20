"""The advisory stop: what raises it, what holds it, what clears it. Pure logic, no ROS, no clock of its own.

ADVISORY, NOT SAFETY-RATED: the stop lock is an extra input for a robot's motion stack (e.g. a twist_mux lock); it
does not replace a certified safety controller, emergency stop or safety-rated sensor.

Two kinds of cause:
- an *event* stop (an ANOMALY answer, or whatever `stop_behaviours` lists) is latched: it holds until
  `clear()` (the `~/clear_stop` service) or, when `latch_timeout_s` > 0, until that long after it was raised;
- a *fault* (the backend raised, the model step hangs, the worker died) holds while the fault lasts and until
  cleared, so a flapping backend cannot release the robot between two errors.
The lock is true while either holds. `snapshot()` says why, for `~/state` and diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class StopSnapshot:
    active: bool
    reason: str  # "" when inactive; else e.g. "anomaly: Someone fell down" or "fault: backend raised ..."
    since_ns: int  # when the current stop was raised (0 when inactive)
    fault: bool


class StopLatch:
    def __init__(self, latch_timeout_s: float = 0.0) -> None:
        self.latch_timeout_s = latch_timeout_s
        self._event: tuple[str, int] | None = None  # (reason, raised at)
        self._fault: tuple[str, int] | None = None
        self._fault_present = False

    def raise_event(self, reason: str, now_ns: int) -> None:
        """An event asks for a stop; a newer event restarts the latch timeout."""
        self._event = (reason, now_ns)

    def set_fault(self, reason: str, now_ns: int) -> None:
        """A fault is present now (called on every check that still sees it)."""
        self._fault_present = True
        if self._fault is None:
            self._fault = (reason, now_ns)

    def fault_gone(self) -> None:
        """The fault is no longer present (the latched fault still holds until cleared)."""
        self._fault_present = False

    def clear(self, now_ns: int) -> tuple[bool, str]:
        """Operator clear: drops the event stop and a fault that is gone. Returns (cleared, message)."""
        if self._fault_present:
            return False, f"cannot clear: {self._fault[0] if self._fault else 'fault'} is still present"
        was = self.snapshot(now_ns)
        self._event = None
        self._fault = None
        return True, f"cleared stop ({was.reason})" if was.active else "no stop was active"

    def snapshot(self, now_ns: int) -> StopSnapshot:
        """The stop as of `now_ns` (an expired event latch is released here)."""
        timeout_ns = self.latch_timeout_s * NS_PER_S
        if self._event is not None and timeout_ns > 0 and now_ns - self._event[1] >= timeout_ns:
            self._event = None
        if self._fault is not None:
            return StopSnapshot(True, f"fault: {self._fault[0]}", self._fault[1], True)
        if self._event is not None:
            return StopSnapshot(True, self._event[0], self._event[1], False)
        return StopSnapshot(False, "", 0, False)
