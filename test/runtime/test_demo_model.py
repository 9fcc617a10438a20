"""Behaviour of the trained demo model through the runtime, on held-out scripted streams of the synthetic world.

These need the demo checkpoint (`vispeak_ros.data.demo_checkpoint()`); they skip until it has been trained.
"""

from __future__ import annotations

import pytest

from vispeak_ros.core.events import Behaviour, Trigger
from vispeak_ros.core.segmenter import Segmenter, SegmenterConfig
from vispeak_ros.core.session_state import SessionState, Transition
from vispeak_ros.runtime.outputs import FeedbackChunk, FinalAnswer, SpeechCancel, StateChange, TypedEvent

SEED = 1_000_000_000  # the first held-out seed


@pytest.fixture(scope="module")
def demo_model():
    from vispeak_ros.data import demo_checkpoint

    path = demo_checkpoint()
    if not (path / "config.json").is_file():
        pytest.skip(f"demo checkpoint not available yet: {path} has no config.json (issue 5 trains it)")
    from vispeak_ros.model import load_checkpoint

    return load_checkpoint(path)


def stream_segments(stream):
    """The world's frames, microphone chunks and user texts through the segmenter, in stamp order."""
    items = [(stamp, 0, "frame", frame) for stamp, frame in stream.frames]
    items += [(stamp, 1, "audio", chunk) for stamp, chunk in stream.audio_chunks()]
    items += [(stamp, 2, "text", text) for stamp, text in stream.user_texts]
    segmenter = Segmenter(SegmenterConfig())
    segments = []
    for stamp, _, kind, value in sorted(items, key=lambda item: (item[0], item[1])):
        add = {"frame": segmenter.add_frame, "audio": segmenter.add_audio, "text": segmenter.add_text}[kind]
        segments += add(stamp, value)
    return segments + segmenter.flush()


def run(demo_model, scenario: str, **overrides):
    from vispeak_ros.runtime.assistant import Assistant
    from vispeak_ros.runtime.config import RuntimeConfig
    from vispeak_ros.training import world

    stream = world.generate(scenario, SEED, split="heldout")
    config = RuntimeConfig().with_overrides(**overrides) if overrides else RuntimeConfig()
    assistant = Assistant.from_model(demo_model, demo_model.tokenizer, config)
    outputs = [out for seg in stream_segments(stream) for out in assistant.process(seg)]
    return stream, assistant, outputs


def of(outputs, kind):
    return [o for o in outputs if isinstance(o, kind)]


def test_wave_gives_a_timely_proactive_wake_up(demo_model):
    stream, assistant, outputs = run(demo_model, "wake_up")
    answers = [a for a in of(outputs, FinalAnswer) if a.trigger is Trigger.VISUAL]
    assert answers, "no proactive answer"
    truth = stream.events[0]
    assert truth.timely(stream.seconds(answers[0].answer_stamp_ns)), (answers[0], truth.timespan)
    woke = [e.event for e in of(outputs, TypedEvent) if e.event.behaviour is Behaviour.WAKE_UP]
    assert any(truth.timely(stream.seconds(e.stamp_ns)) for e in woke), "no timely answer typed WAKE_UP"
    assert assistant.state is SessionState.AWAKE


def test_raised_palm_cuts_the_running_answer_within_one_segment(demo_model):
    stream, _, outputs = run(demo_model, "interrupt")
    cancels = of(outputs, SpeechCancel)
    assert cancels, "the running answer was not cut"
    palm = next(a for a in stream.actions if a.kind == "palm")
    cut_s = stream.seconds(cancels[0].stamp_ns)
    assert palm.start <= cut_s <= palm.end + 1.0 + 1e-9, (cut_s, palm)
    cut_id = cancels[0].up_to_answer_id
    after = cancels[0].segment_index
    later = [c for c in of(outputs, FeedbackChunk) if c.answer_id <= cut_id and c.segment_index > after]
    assert not later, "the cut answer went on"


@pytest.mark.xfail(
    reason="model quality: the demo checkpoint does not answer the held-out goodbye wave as a goodbye (goodbye "
    "time accuracy 0.33, README 'The demo model'), so no TERMINATION event; the runtime path is covered on the tiny "
    "model (test_state_follows_the_typed_events_termination_returns_to_idle)",
    strict=False,
)
def test_goodbye_terminates_and_returns_to_idle(demo_model):
    _, assistant, outputs = run(demo_model, "goodbye")
    assert any(e.event.behaviour is Behaviour.TERMINATION for e in of(outputs, TypedEvent))
    transitions = [c.transition for c in of(outputs, StateChange)]
    assert Transition.TERMINATE in transitions and transitions[-1] is Transition.SETTLE
    assert assistant.state is SessionState.IDLE
