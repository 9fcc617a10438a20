"""Our messages: documented, parseable without ROS, and equal to the constants the code uses."""

from pathlib import Path

import pytest

from vispeak_ros.core.events import Behaviour, Event, Trigger
from vispeak_ros.interfaces import typestore

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_behaviours_equal_the_event_message_constants():
    event_msg = typestore().types["vispeak_ros/msg/Event"]
    assert {b.name: b.value for b in Behaviour} == {b.name: getattr(event_msg, b.name) for b in Behaviour}


def test_triggers_equal_the_feedback_message_constants():
    feedback_msg = typestore().types["vispeak_ros/msg/Feedback"]
    assert {t.name: t.value for t in Trigger} == {t.name: getattr(feedback_msg, f"TRIGGER_{t.name}") for t in Trigger}


def test_confidence_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="confidence must be in"):
        Event(Behaviour.ANOMALY, 1.5, "fire!", 0, 3, 0)


MESSAGES = sorted(p.stem for p in (REPO_ROOT / "msg").glob("*.msg"))


@pytest.mark.parametrize("name", MESSAGES)
def test_every_message_field_and_constant_is_documented(name):
    """A user reading `ros2 interface show` sees what every field means."""
    lines = (REPO_ROOT / "msg" / f"{name}.msg").read_text().splitlines()
    for number, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        has_inline = "#" in line
        has_above = number > 0 and lines[number - 1].lstrip().startswith("#")
        assert has_inline or has_above, f"msg/{name}.msg:{number + 1}: undocumented field {line.strip()!r}"


@pytest.mark.parametrize("name", MESSAGES)
def test_messages_parse_into_rosbags_types_and_round_trip_as_cdr(name):
    store = typestore()
    msgtype = f"vispeak_ros/msg/{name}"
    cls = store.types[msgtype]
    values = {}
    for field_name, (kind, spec) in store.fielddefs[msgtype][1]:
        values[field_name] = _example(store, kind, spec)
    message = cls(**values)
    data = store.serialize_cdr(message, msgtype)
    assert store.deserialize_cdr(data, msgtype) == message


def _example(store, kind, spec):
    from rosbags.typesys.base import Nodetype

    if kind == Nodetype.BASE:
        name = spec[0]
        return {"string": "hello", "bool": True, "float32": 0.5, "float64": 0.25}.get(name, 7)
    if kind == Nodetype.NAME:
        sub = store.types[spec]
        return sub(**{n: _example(store, k, s) for n, (k, s) in store.fielddefs[spec][1]})
    raise AssertionError(f"unexpected field kind {kind} in our messages")
