"""The advisory stop's latch and the speaking estimate, as pure logic (no ROS, no clock of their own)."""

from __future__ import annotations

from vispeak_ros.ros.safety import StopLatch
from vispeak_ros.ros.speech import SpeakingEstimate

S = 1_000_000_000


def test_an_event_stop_holds_until_cleared() -> None:
    latch = StopLatch()
    assert not latch.snapshot(0).active
    latch.raise_event("anomaly: Someone fell down.", 5 * S)
    held = latch.snapshot(10_000 * S)
    assert held.active and held.reason == "anomaly: Someone fell down." and held.since_ns == 5 * S
    assert latch.clear(10_001 * S) == (True, "cleared stop (anomaly: Someone fell down.)")
    assert not latch.snapshot(10_002 * S).active
    assert latch.clear(10_003 * S) == (True, "no stop was active")


def test_an_event_stop_with_a_timeout_releases_itself_and_a_new_event_restarts_it() -> None:
    latch = StopLatch(latch_timeout_s=2.0)
    latch.raise_event("anomaly: fire", 0)
    latch.raise_event("anomaly: fire", 1 * S)
    assert latch.snapshot(2 * S + S // 2).active
    assert not latch.snapshot(3 * S).active


def test_a_fault_wins_and_cannot_be_cleared_while_present() -> None:
    latch = StopLatch(latch_timeout_s=1.0)
    latch.raise_event("anomaly: fall", 0)
    latch.set_fault("backend raised RuntimeError: boom", 1 * S)
    latch.set_fault("backend raised RuntimeError: again", 2 * S)  # the first cause and time are kept
    snapshot = latch.snapshot(5 * S)
    assert snapshot.active and snapshot.fault and snapshot.since_ns == 1 * S
    assert snapshot.reason == "fault: backend raised RuntimeError: boom"
    cleared, message = latch.clear(6 * S)
    assert not cleared and message == "cannot clear: backend raised RuntimeError: boom is still present"
    latch.fault_gone()
    assert latch.snapshot(7 * S).active  # gone is not cleared: an operator decides
    assert latch.clear(8 * S)[0] and not latch.snapshot(9 * S).active


def test_speaking_is_estimated_from_text_until_a_speaking_topic_is_heard() -> None:
    speech = SpeakingEstimate(chars_per_s=10.0)
    speech.said("0123456789", 0)  # one second
    speech.said("01234", 0)  # queued after it: half a second more
    assert speech.speaking(S + S // 4) and not speech.speaking(S + S // 2 + 1)
    speech.said("0123456789", 10 * S)
    speech.cancelled()
    assert not speech.speaking(10 * S + 1)
    speech.report(True)  # a TTS node says when it plays: its word wins from now on
    assert speech.speaking(100 * S)
    speech.report(False)
    speech.said("0123456789", 200 * S)
    assert not speech.speaking(200 * S + 1)
