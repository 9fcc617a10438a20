"""The vispeak node as a robot runs it, over real DDS between processes (loopback, isolated domain): a player
process replays a recording in the ROS 2 wire format with /clock, the node process runs the demo model, an
independent listener process receives what the node publishes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from node_procs import play, start_listener, start_node, stop_listener, stop_node

from vispeak_ros import data
from vispeak_ros.core.events import Behaviour

NS_PER_S = 1_000_000_000


def in_process_reference(recording: Path) -> tuple[list, int]:
    """The same recording through the runtime in-process (bag reader, segmenter, worker): what the node must say,
    and the stream's origin (the first segment's start)."""
    from vispeak_ros.runtime.assistant import Assistant
    from vispeak_ros.runtime.config import RuntimeConfig
    from vispeak_ros.runtime.worker import Worker
    from vispeak_ros.tools.bag_source import read_segments

    outputs: list = []
    origin: list[int] = []
    with Worker(Assistant(RuntimeConfig()), on_output=lambda e: outputs.append(e.output), replay=True) as worker:
        for segment in read_segments(recording):
            origin = origin or [segment.start_ns]
            worker.submit(segment)
        worker.wait_idle()
    return outputs, origin[0]


def test_demo_recording_through_the_node_between_processes(dds_env: dict[str, str]) -> None:
    from vispeak_ros.runtime.outputs import FeedbackChunk, FinalAnswer, SpeechCancel, TypedEvent

    recording = data.demo_recording()
    node = start_node(
        dds_env,
        "use_sim_time:=true",
        "camera_transport:=compressed",
        "mute_audio_while_speaking:=false",  # the reference run hears everything too
        "stop_behaviours:=[wake_up]",  # the demo model's reliable behaviour here raises the (advisory) stop
    )
    try:
        listener = start_listener(dds_env)
        sent = play(dds_env, recording, "--rate", "3")
        time.sleep(2.0)
        got = stop_listener(listener)
    finally:
        code, stderr = stop_node(node)
    assert code == 0, stderr
    assert sent["sent"] == {"/camera/image_raw/compressed": 600, "/audio": 937, "/query": 4}

    reference, origin_ns = in_process_reference(recording)
    chunks = [o for o in reference if isinstance(o, FeedbackChunk)]
    finals = [o for o in reference if isinstance(o, FinalAnswer)]
    events = [o.event for o in reference if isinstance(o, TypedEvent) and o.event.behaviour is not Behaviour.NONE]
    assert finals, "the reference run said nothing"

    # Feedback: every sentence chunk (partial) and every whole answer (final), same text, ids and stamps.
    expected_feedback = [
        (o.text, isinstance(o, FeedbackChunk), o.answer_id, o.answer_stamp_ns, o.stamp_ns)
        for o in reference
        if isinstance(o, (FeedbackChunk, FinalAnswer))
    ]
    received_feedback = [
        (f["text"], f["partial"], f["answer_id"], round(f["trigger_stamp"] * NS_PER_S), round(f["stamp"] * NS_PER_S))
        for f in got["feedback"]
    ]
    assert [f[:3] for f in received_feedback] == [f[:3] for f in expected_feedback]
    for received, expected in zip(received_feedback, expected_feedback, strict=True):
        assert abs(received[3] - expected[3]) <= 1000 and abs(received[4] - expected[4]) <= 1000  # float stamps
    assert got["speech"] == [c.text for c in chunks if c.text]
    assert [(e["type"], e["text"], e["answer_id"]) for e in got["events"]] == [
        (int(e.behaviour), e.text, e.answer_id) for e in events
    ]
    assert len(got["speech_cancel"]) == sum(isinstance(o, SpeechCancel) for o in reference)

    # Ground truth: the wake-up answer falls in its annotated window (inclusive, +2 s as ViSpeak-Bench scores).
    truth = json.loads(data.demo_annotations().read_text())["events"]
    wake = next(t for t in truth if t["behaviour"] == "WAKE_UP")
    woke = [e["stamp"] - origin_ns / NS_PER_S for e in got["events"] if e["type"] == Behaviour.WAKE_UP]
    assert any(max(0.0, wake["timespan"][0]) <= t <= wake["timespan"][1] + 2.0 for t in woke), (woke, wake)

    # The advisory stop: off until the first wake-up event, then latched on; the state says why.
    locks = [on for _, on in got["lock"]]
    assert locks and not locks[0] and locks[-1]
    assert locks.index(True) == len(locks) - locks[::-1].index(False)  # one switch, never released
    latest = got["state"][-1]
    assert latest["stop_active"] and latest["stop_reason"].startswith("wake_up: ") and not latest["fault"]


@pytest.mark.parametrize("rate_hz", [20.0])
def test_killing_the_node_stops_the_heartbeat(dds_env: dict[str, str], make_node, rate_hz: float) -> None:
    """kill -9: no lock message later than one period + 50 ms, so twist_mux's lock timeout engages."""
    from vispeak_ros.ros import port

    arrivals: list[float] = []
    listener = make_node("heartbeat_listener")
    listener.create_subscription(
        "std_msgs/msg/Bool", "/vispeak/stop_lock", lambda m: arrivals.append(time.monotonic()), port.DEFAULT
    )
    node = start_node(dds_env, f"lock_rate_hz:={rate_hz}", "audio_flavour:=none")
    try:
        assert listener.spin_until(lambda: len(arrivals) >= 40, 120.0), "no steady heartbeat"
        node.kill()
        killed = time.monotonic()
        node.wait(10)
        listener.spin_until(lambda: False, 1.0)
    finally:
        if node.poll() is None:
            node.kill()
        node.communicate()
    gaps = [b - a for a, b in zip(arrivals[-30:-1], arrivals[-29:], strict=True) if b < killed]
    assert sorted(gaps)[len(gaps) // 2] == pytest.approx(1.0 / rate_hz, abs=0.02)
    assert arrivals[-1] - killed <= 1.0 / rate_hz + 0.05
