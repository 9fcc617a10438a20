"""The proactive trigger sums the last three probabilities, as ViSpeak's inference does, and re-arms."""

from vispeak_ros.core.trigger import TriggerRule


def test_trigger_fires_on_the_sum_of_the_last_three_not_the_mean():
    rule = TriggerRule(threshold=0.35)
    decisions = [rule.push(p) for p in [0.0, 0.1, 0.1, 0.1, 0.2, 0.0, 0.0, 0.0]]
    assert [round(d.running_sum, 6) for d in decisions] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.3, 0.2, 0.0]
    assert [d.fired for d in decisions] == [False, False, False, False, True, False, False, False]


def test_trigger_rearms_after_an_answer():
    rule = TriggerRule(threshold=0.35)
    assert rule.push(0.9).fired
    rule.rearm()
    assert not rule.push(0.2).fired


def test_the_latch_releases_when_the_probability_falls():
    rule = TriggerRule(0.35, release=0.2)
    assert rule.push(0.5).fired
    rule.rearm()
    assert not rule.push(0.9).fired and not rule.push(0.9).fired
    assert not rule.push(0.1).fired  # released: the queue restarts from this frame
    assert rule.push(0.3).fired and rule.push(0.3).running_sum == 0.1 + 0.3 + 0.3
