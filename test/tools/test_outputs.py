"""The assistant's output recording reads back with its stored definitions; the timeline picture is drawn."""

import numpy as np
import pytest

from vispeak_ros.core.events import Behaviour, Trigger
from vispeak_ros.tools.output_bag import EVENTS_TOPIC, FEEDBACK_TOPIC, INFORMATIVE_TOPIC, OutputBag
from vispeak_ros.tools.timeline import AnswerMark, ScorePoint, Window, draw_timeline, save_timeline

T0 = 1_700_000_000_000_000_000


def test_output_recording_reads_back_without_our_package_types(tmp_path):
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    path = tmp_path / "out"
    with OutputBag(path) as bag:
        bag.informative(T0, 0, 0.5, 0.5, 0.35, True)
        bag.feedback(T0, "Watch out!", True, 1, Trigger.VISUAL, 0, T0, 0.5, 0.02)
        bag.feedback(T0, "Watch out! Are you okay?", False, 1, Trigger.VISUAL, 0, T0, 0.5, 0.04)
        bag.event(T0, Behaviour.ANOMALY, 0.9, "Watch out! Are you okay?", 1, 0)
    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:  # a store without ours
        read = [(c.topic, reader.deserialize(raw, c.msgtype)) for c, _, raw in reader.messages()]
    topics = [topic for topic, _ in read]
    assert [topics.count(t) for t in (FEEDBACK_TOPIC, EVENTS_TOPIC, INFORMATIVE_TOPIC)] == [2, 1, 1]
    event = next(msg for topic, msg in read if topic == EVENTS_TOPIC)
    assert event.type == Behaviour.ANOMALY and event.header.stamp.sec == T0 // 10**9
    final = [msg for topic, msg in read if topic == FEEDBACK_TOPIC][-1]
    assert not final.partial and final.trigger == Trigger.VISUAL and final.text.endswith("okay?")
    with pytest.raises(FileExistsError):
        OutputBag(path)


def test_timeline_marks_triggers_answers_and_windows(tmp_path):
    scores = [ScorePoint(t, 0.5 if t == 5 else 0.01, 0.5 if t in (5, 6, 7) else 0.02, t == 5) for t in range(12)]
    image = draw_timeline(scores, 0.35, [AnswerMark(5, "Hello!", "WAKE_UP")], [Window(4, 6, "wake_up")], "test")
    assert image.dtype == np.uint8 and image.shape[2] == 3
    red = (image[:, :, 0] > 200) & (image[:, :, 1] < 80) & (image[:, :, 2] < 80)
    green = (image[:, :, 1] > 200) & (image[:, :, 0] < 200) & (image[:, :, 2] < 200)
    assert red.any() and green.any()  # the triggered bar and the ground-truth window are drawn
    assert save_timeline(tmp_path / "t.png", image).stat().st_size > 1000
