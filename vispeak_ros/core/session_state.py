"""The assistant's session state machine, with every allowed transition listed in one table.

    IDLE --wake_up--> AWAKE --answer_started--> RESPONDING --answer_finished--> AWAKE
    RESPONDING --interrupt--> INTERRUPTED --resume--> AWAKE
    any but TERMINATED --terminate--> TERMINATED --settle--> IDLE          any --reset--> IDLE

A proactive answer (e.g. an anomaly warning) may start from IDLE, so answer_started is allowed there too.
Anything not in the table raises InvalidTransition, so a logic error shows up instead of a silent state.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum


class SessionState(Enum):
    IDLE = "idle"  # nobody is engaging the robot; only proactive warnings are spoken
    AWAKE = "awake"  # someone woke the assistant; it answers and reacts
    RESPONDING = "responding"  # an answer is being generated / spoken
    INTERRUPTED = "interrupted"  # the running answer was cut by an interruption gesture
    TERMINATED = "terminated"  # the person said goodbye; returns to IDLE once the farewell is done


class Transition(Enum):
    WAKE_UP = "wake_up"
    ANSWER_STARTED = "answer_started"
    ANSWER_FINISHED = "answer_finished"
    INTERRUPT = "interrupt"
    RESUME = "resume"
    TERMINATE = "terminate"
    SETTLE = "settle"
    RESET = "reset"


S, T = SessionState, Transition
TRANSITIONS: dict[tuple[SessionState, Transition], SessionState] = {
    (S.IDLE, T.WAKE_UP): S.AWAKE,
    (S.AWAKE, T.WAKE_UP): S.AWAKE,
    (S.IDLE, T.ANSWER_STARTED): S.RESPONDING,
    (S.AWAKE, T.ANSWER_STARTED): S.RESPONDING,
    (S.INTERRUPTED, T.ANSWER_STARTED): S.RESPONDING,
    (S.RESPONDING, T.ANSWER_STARTED): S.RESPONDING,  # a newer trigger pre-empts the running answer
    (S.RESPONDING, T.ANSWER_FINISHED): S.AWAKE,
    (S.RESPONDING, T.INTERRUPT): S.INTERRUPTED,
    (S.INTERRUPTED, T.RESUME): S.AWAKE,
    (S.IDLE, T.TERMINATE): S.TERMINATED,
    (S.AWAKE, T.TERMINATE): S.TERMINATED,
    (S.RESPONDING, T.TERMINATE): S.TERMINATED,
    (S.INTERRUPTED, T.TERMINATE): S.TERMINATED,
    (S.TERMINATED, T.SETTLE): S.IDLE,
    **{(state, T.RESET): S.IDLE for state in SessionState},
}
del S, T


class InvalidTransition(ValueError):
    pass


class SessionMachine:
    """Holds the current state; `apply` moves it along the table and tells listeners."""

    def __init__(self, on_change: Callable[[SessionState, SessionState, Transition], None] | None = None) -> None:
        self.state = SessionState.IDLE
        self._on_change = on_change

    def allowed(self) -> list[Transition]:
        return [t for (s, t) in TRANSITIONS if s is self.state]

    def can(self, transition: Transition) -> bool:
        return (self.state, transition) in TRANSITIONS

    def apply(self, transition: Transition) -> SessionState:
        key = (self.state, transition)
        if key not in TRANSITIONS:
            allowed = ", ".join(t.value for t in self.allowed())
            raise InvalidTransition(
                f"session transition {transition.value!r} is not allowed in state {self.state.value!r} "
                f"(allowed: {allowed})"
            )
        before, self.state = self.state, TRANSITIONS[key]
        if self._on_change is not None and before is not self.state:
            self._on_change(before, self.state, transition)
        return self.state
