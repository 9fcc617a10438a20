"""Synthetic-world recordings: rosbag2 in both storages and audio flavours, ViSpeak-Bench annotations, mp4 + wav."""

from __future__ import annotations

import itertools
import json
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from vispeak_ros.core.clock import NS_PER_S
from vispeak_ros.training import recordings, world

REAL_ANNOTATIONS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vispeak_bench" / "annotations"


@pytest.fixture(scope="module")
def stream() -> world.Stream:
    return world.generate("thumbs_up", 314, fps=5.0)


def _read_bag(path: Path) -> tuple[dict[str, str], dict[str, list[tuple[int, object]]], list[int]]:
    """Topic types, messages per topic (record time, message) and all record times in file order, decoded with a
    fresh type store built only from the definitions stored in the bag."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.EMPTY)
    topics: dict[str, str] = {}
    messages: dict[str, list[tuple[int, object]]] = {}
    times: list[int] = []
    with Reader(path) as reader:
        for connection in reader.connections:
            assert connection.msgdef.data, f"{connection.topic}: no message definition stored"
            types = get_types_from_msg(connection.msgdef.data, connection.msgtype)
            store.register({k: v for k, v in types.items() if k not in store.types})
            topics[connection.topic] = connection.msgtype
        for connection, timestamp, raw in reader.messages():
            times.append(timestamp)
            messages.setdefault(connection.topic, []).append(
                (timestamp, store.deserialize_cdr(raw, connection.msgtype))
            )
    return topics, messages, times


def _stamp(msg) -> int:
    return msg.header.stamp.sec * NS_PER_S + msg.header.stamp.nanosec


@pytest.mark.parametrize(
    ("storage", "flavour", "image"),
    [("mcap", "mgonzs13", "compressed"), ("sqlite3", "ros_drivers", "compressed"), ("sqlite3", "mgonzs13", "raw"),
     ("mcap", "ros_drivers", "raw")],
)  # fmt: skip
def test_bag_reads_back_with_its_own_definitions(tmp_path, stream, storage, flavour, image):
    path = recordings.write_bag(stream, tmp_path / "bag", storage=storage, image=image, audio_flavour=flavour)
    topics, messages, times = _read_bag(path)
    camera = recordings.CAMERA_TOPICS[image]
    audio = recordings.AUDIO_TOPICS[flavour]
    expected = {
        camera: "sensor_msgs/msg/CompressedImage" if image == "compressed" else "sensor_msgs/msg/Image",
        "/query": "std_msgs/msg/String",
    }
    if flavour == "mgonzs13":
        expected[audio] = "audio_common_msgs/msg/AudioStamped"
    else:
        expected |= {audio: "audio_common_msgs/msg/AudioDataStamped", "/audio_info": "audio_common_msgs/msg/AudioInfo"}
    assert topics == expected
    assert times == sorted(times) and times[0] >= stream.start_ns
    metadata = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert metadata["storage_identifier"] == storage and metadata["version"] == 9
    assert metadata["custom_data"]["vispeak_world.name"] == stream.name

    frames = messages[camera]
    assert len(frames) == len(stream.frames)
    assert [_stamp(m) for _, m in frames] == [s for s, _ in stream.frames]
    for (_, msg), (_, rgb) in zip(frames[::9], stream.frames[::9], strict=False):
        if image == "raw":
            assert (msg.encoding, msg.height, msg.width) == ("rgb8", *rgb.shape[:2])
            assert np.array_equal(np.asarray(msg.data).reshape(rgb.shape), rgb)
        else:
            decoded = cv2.cvtColor(cv2.imdecode(np.asarray(msg.data), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            assert np.abs(decoded.astype(int) - rgb).mean() < 4

    chunks = stream.audio_chunks(16_000, 1024, "float32" if flavour == "mgonzs13" else "int16")
    sound = messages[audio]
    assert len(sound) == len(chunks)
    assert [_stamp(m) for _, m in sound] == [s for s, _ in chunks]
    assert all(t == _stamp(m) + 1024 * NS_PER_S // 16_000 for t, m in sound)  # recorded when the chunk is complete
    if flavour == "mgonzs13":
        info = sound[0][1].audio.info
        assert (info.format, info.channels, info.rate, info.chunk) == (1, 1, 16_000, 1024)
        samples = np.concatenate([m.audio.audio_data.float32_data for _, m in sound])
        assert all(len(m.audio.audio_data.int16_data) == 0 for _, m in sound)
    else:
        ((when, info),) = messages["/audio_info"]
        assert when == stream.audio_start_ns == times[0]
        assert (info.channels, info.sample_rate, info.sample_format, info.coding_format) == (1, 16_000, "S16LE", "wave")
        samples = np.concatenate([np.frombuffer(np.asarray(m.audio.data).tobytes(), "<i2") for _, m in sound])
    assert np.array_equal(samples, np.concatenate([c for _, c in chunks]))

    queries = messages["/query"]
    assert [(t, m.data) for t, m in queries] == stream.user_texts


def test_mgonzs13_int16_at_48_khz(tmp_path, stream):
    path = recordings.write_bag(stream, tmp_path / "bag", audio_rate=48_000, audio_chunk=512, audio_format="int16")
    _, messages, _ = _read_bag(path)
    sound = messages["/audio"]
    info = sound[0][1].audio.info
    assert (info.format, info.rate, info.chunk) == (8, 48_000, 512)
    assert all(
        len(m.audio.audio_data.int16_data) == 512 and len(m.audio.audio_data.float32_data) == 0 for _, m in sound
    )
    assert len(sound) == round(len(stream.audio) * 3) // 512
    with pytest.raises(ValueError, match="int16"):
        recordings.write_bag(stream, tmp_path / "bad", audio_flavour="ros_drivers", audio_format="float32")
    with pytest.raises(ValueError, match="storage"):
        recordings.write_bag(stream, tmp_path / "bad", storage="bag")


# ---- annotations ------------------------------------------------------------------------------------------------


def _shape(item: dict) -> tuple[frozenset, tuple[frozenset, ...]]:
    """An item's key set and its conversation turns' key sets, in order."""
    turns = tuple(frozenset(turn) for turn in item.get("conversations", ()))
    return frozenset(item), turns


@pytest.fixture(scope="module")
def annotated(tmp_path_factory) -> tuple[list[world.Stream], dict[str, Path]]:
    streams = [world.generate(s, 50 + i, fps=2.0) for i, s in enumerate(world.SCENARIOS)]
    folder = tmp_path_factory.mktemp("annotations")
    return streams, recordings.write_all_annotations(streams, folder, video_pattern="{name}.mp4")


def test_annotations_have_one_file_per_subtask_with_the_ground_truth(annotated):
    streams, files = annotated
    assert set(files) == set(recordings.SUBTASKS.values())
    for stream in streams:
        for event in stream.events:
            subtask = recordings.SUBTASKS[event.scenario]
            (item,) = json.loads(files[subtask].read_text(encoding="utf-8"))
            assert item["video"] == f"{stream.name}.mp4"
            if subtask == "Visual_Reference":
                assert item["proactive"] is False
                assert item["ans_full"] == event.target and item["ans"] == event.choice
                assert f"{item['ans']}. {event.target}" in item["questions"]
                assert item["questions"].startswith(event.context[0].text)
                assert item["questions"].endswith("\n\nThe best option is:")
                assert item["video_end_time"] == pytest.approx(event.context[0].time)
                continue
            last = item["conversations"][-1]
            assert (last["from"], last["value"]) == ("gpt", event.answer)
            assert last["timespan"] == pytest.approx(list(event.timespan))
            assert event.timespan[0] <= last["time"] <= event.timespan[1]
            assert item["proactive"] is True
            earlier = [(t["from"], t["value"]) for t in item["conversations"][:-1]]
            assert earlier == [("human" if t.role == "user" else "gpt", t.text) for t in event.context]
    no_event = recordings.annotation_items([s for s in streams if s.scenario == "none"], "Visual_Wake-Up")
    assert no_event == []


def test_annotations_use_the_real_benchmark_fields(annotated):
    if not REAL_ANNOTATIONS.is_dir():
        pytest.skip(f"no ViSpeak-Bench annotations at {REAL_ANNOTATIONS}")
    _, files = annotated
    for subtask, path in files.items():
        real = json.loads((REAL_ANNOTATIONS / f"{subtask}.json").read_text(encoding="utf-8"))
        ours = json.loads(path.read_text(encoding="utf-8"))
        real_shapes = {_shape(item) for item in real}
        for item in ours:
            assert _shape(item) in real_shapes, f"{subtask}: {sorted(item)} not a real item layout"
            if "task_type" in item:
                assert item["task_type"] in {r["task_type"] for r in real}
        if subtask == "Gesture_Understanding":
            assert all(item["gesture"] in {r["gesture"] for r in real} for item in ours)
        if subtask == "Visual_Interruption":
            assert all(item["interruption_type"] in {r["interruption_type"] for r in real} for item in ours)


def test_session_annotations_cut_the_stream_into_clips():
    session = world.generate_session(12, fps=2.0)
    wake = recordings.annotation_items([session], "Visual_Wake-Up")[0]
    goodbye = recordings.annotation_items([session], "Visual_Termination")[0]
    assert wake["video_start_time"] == 0.0 and wake["video_end_time"] <= goodbye["video_start_time"]
    gesture = recordings.annotation_items([session], "Gesture_Understanding")[0]
    assert gesture["video_start_time"] == session.events[1].clip[0] > 0  # not in the real layout: only when needed
    with pytest.raises(ValueError, match="unknown subtask"):
        recordings.annotation_items([session], "Humor")


# ---- video + wav ------------------------------------------------------------------------------------------------


def test_video_and_wav(tmp_path, stream):
    video, wav = recordings.write_video(stream, tmp_path / "clip.mp4")
    assert wav == tmp_path / "clip.wav"
    capture = cv2.VideoCapture(str(video))
    try:
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(stream.fps)
        decoded = list(itertools.takewhile(lambda r: r[0], iter(capture.read, None)))
    finally:
        capture.release()
    assert len(decoded) == len(stream.frames)
    first = cv2.cvtColor(decoded[0][1], cv2.COLOR_BGR2RGB)
    assert first.shape == stream.frames[0][1].shape
    assert np.abs(first.astype(int) - stream.frames[0][1]).mean() < 8
    with wave.open(str(wav)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 16_000)
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), "<i2")
    assert len(pcm) == len(stream.audio)
    assert np.abs(pcm / 32768 - stream.audio).max() <= 1 / 32768
