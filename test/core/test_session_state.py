"""The session follows the conversation: woken, answering, interrupted, and back to idle after goodbye."""

import pytest

from vispeak_ros.core.session_state import InvalidTransition, SessionMachine, SessionState, Transition


def test_a_whole_conversation_walks_the_states():
    changes = []
    machine = SessionMachine(on_change=lambda before, after, why: changes.append((before, after, why)))
    for transition, expected in [
        (Transition.WAKE_UP, SessionState.AWAKE),
        (Transition.ANSWER_STARTED, SessionState.RESPONDING),
        (Transition.INTERRUPT, SessionState.INTERRUPTED),
        (Transition.RESUME, SessionState.AWAKE),
        (Transition.ANSWER_STARTED, SessionState.RESPONDING),
        (Transition.ANSWER_FINISHED, SessionState.AWAKE),
        (Transition.TERMINATE, SessionState.TERMINATED),
        (Transition.SETTLE, SessionState.IDLE),
    ]:
        assert machine.apply(transition) is expected
    assert len(changes) == 8
    assert changes[0] == (SessionState.IDLE, SessionState.AWAKE, Transition.WAKE_UP)


def test_a_proactive_warning_can_start_while_idle():
    machine = SessionMachine()
    assert machine.apply(Transition.ANSWER_STARTED) is SessionState.RESPONDING


def test_invalid_transitions_are_refused_with_the_allowed_ones_listed():
    machine = SessionMachine()
    with pytest.raises(InvalidTransition, match=r"'interrupt' is not allowed in state 'idle'.*wake_up"):
        machine.apply(Transition.INTERRUPT)
    assert machine.state is SessionState.IDLE


def test_reset_returns_to_idle_from_anywhere():
    for state in SessionState:
        machine = SessionMachine()
        machine.state = state
        assert machine.apply(Transition.RESET) is SessionState.IDLE
