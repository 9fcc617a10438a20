"""Writers for synthetic-world streams: rosbag2 recordings, ViSpeak-Bench annotation files, and mp4 + wav.

Bags hold what a robot would record: a camera (`sensor_msgs/CompressedImage` JPEG or raw `sensor_msgs/Image`), a
microphone in either audio_common flavour (mgonzs13 `AudioStamped` float32/int16, or ros-drivers `AudioDataStamped`
wave S16LE plus one `AudioInfo`), and the user's typed questions on `/query` (`std_msgs/String`). Header stamps are
stream time on the stream's epoch; the record time of an audio chunk is the end of the chunk (when a capture node
could publish it), of everything else its stamp. The bag stores the full message definitions, so any reader can
decode it without our typestore. rosbags is imported by `write_bag` only.

Annotations follow the real ViSpeak-Bench files (one JSON list per subtask, same field names and layout); times are
stream seconds. The message builders are public so that other tools (e.g. the demo) can make the same messages.
"""

from __future__ import annotations

import json
import wave
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vispeak_ros.core.clock import NS_PER_S
from vispeak_ros.training.world import (
    AUDIO_RATE,
    GESTURE_LABEL,
    INTERRUPTION_LABEL,
    GroundTruth,
    Stream,
    Turn,
    multiple_choice,
)

CAMERA_TOPICS: dict[str, str] = {"compressed": "/camera/image_raw/compressed", "raw": "/camera/image_raw"}
AUDIO_TOPICS: dict[str, str] = {"mgonzs13": "/audio", "ros_drivers": "/audio_stamped"}
AUDIO_INFO_TOPIC = "/audio_info"
QUERY_TOPIC = "/query"
STORAGES: tuple[str, ...] = ("mcap", "sqlite3")
PORTAUDIO_FORMATS: dict[str, int] = {"float32": 1, "int16": 8}  # mgonzs13 AudioInfo.format

# Scenario -> ViSpeak-Bench subtask (annotation file stem); `none` streams belong to none.
SUBTASKS: dict[str, str] = {
    "wake_up": "Visual_Wake-Up",
    "fall": "Anomaly_Warning",
    "thumbs_up": "Gesture_Understanding",
    "point": "Visual_Reference",
    "interrupt": "Visual_Interruption",
    "goodbye": "Visual_Termination",
}
TASK_TYPES: dict[str, str] = {
    "Visual_Wake-Up": "Visual Wake-Up",
    "Visual_Reference": "Visual Reference",
    "Visual_Interruption": "Visual Interruption",
    "Visual_Termination": "Visual Termination",
}


# ---- messages ---------------------------------------------------------------------------------------------------


def header(store: Any, stamp_ns: int, frame_id: str) -> Any:
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    types = store.types
    return types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec, nanosec), frame_id=frame_id)


def image_message(
    store: Any, stamp_ns: int, rgb: np.ndarray, image: str = "compressed", quality: int = 80, frame_id: str = "camera"
) -> tuple[str, Any]:
    """(type name, message): a JPEG `sensor_msgs/CompressedImage` or an rgb8 `sensor_msgs/Image`."""
    from vispeak_ros.ros.conversions.image import rgb_to_compressed_msg_fields, rgb_to_image_msg_fields

    if image == "compressed":
        msgtype = "sensor_msgs/msg/CompressedImage"
        fields = rgb_to_compressed_msg_fields(rgb, "jpeg", quality=quality)
    elif image == "raw":
        msgtype = "sensor_msgs/msg/Image"
        fields = rgb_to_image_msg_fields(rgb, "rgb8")
    else:
        raise ValueError(f"image must be 'compressed' or 'raw', got {image!r}")
    return msgtype, store.types[msgtype](header=header(store, stamp_ns, frame_id), **fields)


def mgonzs13_audio_message(
    store: Any, stamp_ns: int, samples: np.ndarray, rate: int, frame_id: str = "microphone"
) -> Any:
    """A mono mgonzs13 `audio_common_msgs/AudioStamped`; the sample type (float32 or int16) picks the format."""
    kind = np.dtype(samples.dtype).name
    if kind not in PORTAUDIO_FORMATS:
        raise ValueError(f"mgonzs13 audio samples must be float32 or int16, got {kind}")
    types = store.types
    arrays = {
        "float32_data": np.zeros(0, np.float32),
        "int32_data": np.zeros(0, np.int32),
        "int16_data": np.zeros(0, np.int16),
        "int8_data": np.zeros(0, np.int8),
        "uint8_data": np.zeros(0, np.uint8),
    }
    arrays[f"{kind}_data"] = np.ascontiguousarray(samples)
    info = types["audio_common_msgs/msg/AudioInfo"](
        format=PORTAUDIO_FORMATS[kind], channels=1, rate=int(rate), chunk=len(samples)
    )
    audio = types["audio_common_msgs/msg/Audio"](
        audio_data=types["audio_common_msgs/msg/AudioData"](**arrays), info=info
    )
    return types["audio_common_msgs/msg/AudioStamped"](header=header(store, stamp_ns, frame_id), audio=audio)


def ros_drivers_audio_message(store: Any, stamp_ns: int, samples: np.ndarray, frame_id: str = "microphone") -> Any:
    """A ros-drivers `audio_common_msgs/AudioDataStamped` carrying raw S16LE PCM ("wave" coding)."""
    if samples.dtype != np.int16:
        raise ValueError(f"ros_drivers wave audio is int16 (S16LE), got {samples.dtype}")
    data = np.frombuffer(samples.astype("<i2").tobytes(), np.uint8)
    audio = store.types["audio_common_msgs/msg/AudioData"](data=data)
    return store.types["audio_common_msgs/msg/AudioDataStamped"](header=header(store, stamp_ns, frame_id), audio=audio)


def ros_drivers_audio_info(store: Any, rate: int) -> Any:
    """The ros-drivers `audio_common_msgs/AudioInfo` of mono S16LE wave audio at `rate`."""
    return store.types["audio_common_msgs/msg/AudioInfo"](
        channels=1, sample_rate=int(rate), sample_format="S16LE", bitrate=0, coding_format="wave"
    )


def bag_messages(
    stream: Stream,
    store: Any,
    *,
    image: str = "compressed",
    audio_flavour: str = "mgonzs13",
    camera_topic: str | None = None,
    audio_topic: str | None = None,
    audio_info_topic: str = AUDIO_INFO_TOPIC,
    query_topic: str = QUERY_TOPIC,
    audio_rate: int = AUDIO_RATE,
    audio_chunk: int = 1024,
    audio_format: str | None = None,
    jpeg_quality: int = 75,
) -> list[tuple[int, str, str, Any]]:
    """(record time ns, topic, type name, message) of a stream's recording, in record-time order.

    `store` must hold the `audio_flavour` types (vispeak_ros.ros.audio_common.typestore(audio_flavour)).
    `audio_format` None means float32 for mgonzs13 and int16 for ros_drivers (which only carries S16LE wave).
    """
    if audio_flavour not in AUDIO_TOPICS:
        raise ValueError(f"audio_flavour must be one of {', '.join(AUDIO_TOPICS)}, got {audio_flavour!r}")
    if image not in CAMERA_TOPICS:
        raise ValueError(f"image must be one of {', '.join(CAMERA_TOPICS)}, got {image!r}")
    if audio_format is None:
        audio_format = "float32" if audio_flavour == "mgonzs13" else "int16"
    if audio_flavour == "ros_drivers" and audio_format != "int16":
        raise ValueError("ros_drivers audio is S16LE wave: audio_format must be 'int16'")
    camera_topic = camera_topic or CAMERA_TOPICS[image]
    audio_topic = audio_topic or AUDIO_TOPICS[audio_flavour]
    out: list[tuple[int, int, str, str, Any]] = []  # (record time, order, topic, type, message)
    for stamp, rgb in stream.frames:
        msgtype, msg = image_message(store, stamp, rgb, image, jpeg_quality)
        out.append((stamp, 1, camera_topic, msgtype, msg))
    if audio_flavour == "ros_drivers":
        info = ros_drivers_audio_info(store, audio_rate)
        out.append((stream.audio_start_ns, 0, audio_info_topic, "audio_common_msgs/msg/AudioInfo", info))
    period = audio_chunk * NS_PER_S // audio_rate
    for stamp, samples in stream.audio_chunks(audio_rate, audio_chunk, audio_format):
        if audio_flavour == "mgonzs13":
            msg = mgonzs13_audio_message(store, stamp, samples, audio_rate)
            out.append((stamp + period, 2, audio_topic, "audio_common_msgs/msg/AudioStamped", msg))
        else:
            msg = ros_drivers_audio_message(store, stamp, samples)
            out.append((stamp + period, 2, audio_topic, "audio_common_msgs/msg/AudioDataStamped", msg))
    for stamp, text in stream.user_texts:
        out.append((stamp, 3, query_topic, "std_msgs/msg/String", store.types["std_msgs/msg/String"](data=text)))
    out.sort(key=lambda item: (item[0], item[1]))
    return [(record, topic, msgtype, msg) for record, _, topic, msgtype, msg in out]


def write_bag(
    stream: Stream,
    path: str | Path,
    storage: str = "mcap",
    image: str = "compressed",
    audio_flavour: str = "mgonzs13",
    camera_topic: str | None = None,
    audio_topic: str | None = None,
    *,
    version: int = 9,
    **options: Any,
) -> Path:
    """Write `stream` as a rosbag2 folder at `path` (must not exist) in `storage` "mcap" or "sqlite3".

    Further keyword options are those of `bag_messages` (audio_rate, audio_chunk, audio_format, jpeg_quality, ...).
    The bag's custom data records the stream's name, seed, split and scenario.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    from vispeak_ros.ros import audio_common

    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    store = audio_common.typestore(audio_flavour)
    messages = bag_messages(
        stream, store, image=image, audio_flavour=audio_flavour, camera_topic=camera_topic, audio_topic=audio_topic,
        **options,
    )  # fmt: skip
    path = Path(path)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=version, storage_plugin=plugin) as writer:  # type: ignore[arg-type]
        for key, value in (("name", stream.name), ("seed", str(stream.seed)), ("split", stream.split),
                           ("scenario", stream.scenario)):  # fmt: skip
            writer.set_custom_data(f"vispeak_world.{key}", value)
        connections: dict[str, Any] = {}
        for record, topic, msgtype, msg in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(connections[topic], record, store.serialize_cdr(msg, msgtype))
    return path


# ---- ViSpeak-Bench annotations ----------------------------------------------------------------------------------


def _t(x: float) -> float:
    return round(float(x), 3)


def _human(turn: Turn, span: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"from": "human", "value": turn.text, "time": _t(turn.time)}
    if span:
        item["timespan"] = [_t(turn.span[0]), _t(turn.span[1])]
    return item


def _gpt(turn: Turn, span: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"from": "gpt", "value": turn.text, "time": _t(turn.time)}
    if span:
        item["timespan"] = [_t(turn.span[0]), _t(turn.span[1])]
    return item


def _answer(event: GroundTruth) -> dict[str, Any]:
    t1, t2 = event.timespan
    return {"from": "gpt", "value": event.answer, "time": _t(event.answer_time), "timespan": [_t(t1), _t(t2)]}


def _context(event: GroundTruth, span: bool) -> list[dict[str, Any]]:
    return [(_human if t.role == "user" else _gpt)(t, span) for t in event.context]


def annotation_item(stream: Stream, event: GroundTruth, video: str) -> dict[str, Any]:
    """The ViSpeak-Bench item of one event, in its subtask's format.

    Gesture_Understanding and Anomaly_Warning items have no start-time field in the real files; ours add
    `video_start_time` only when the event's clip does not start at 0 (an event late in a session stream).
    """
    subtask = SUBTASKS[event.scenario]
    start, end = event.clip
    if subtask == "Visual_Wake-Up":
        return {
            "video": video, "task_type": TASK_TYPES[subtask], "video_start_time": _t(start),
            "video_end_time": _t(end), "proactive": True, "conversations": [_answer(event)],
        }  # fmt: skip
    if subtask == "Anomaly_Warning":
        item = {
            "video": video, "n_frames": len(stream.frames), "fps": stream.fps, "proactive": True,
            "conversations": [_answer(event)], "video_len": _t(stream.duration_s),
        }  # fmt: skip
    elif subtask == "Gesture_Understanding":
        item = {
            "video": video, "gesture": GESTURE_LABEL, "proactive": True,
            "conversations": [*_context(event, span=False), _answer(event)],
        }  # fmt: skip
    elif subtask == "Visual_Reference":
        question = event.context[0]
        return {
            "video": video, "task_type": TASK_TYPES[subtask], "video_start_time": _t(start),
            "video_end_time": _t(question.time), "proactive": False,
            "questions": multiple_choice(question.text, event.options), "ans": event.choice, "ans_full": event.target,
        }  # fmt: skip
    elif subtask == "Visual_Interruption":
        user, assistant = event.context
        return {
            "video": video, "task_type": TASK_TYPES[subtask], "interruption_type": INTERRUPTION_LABEL,
            "proactive": True, "conversations": [_human(user, span=True), _gpt(assistant, span=False), _answer(event)],
        }  # fmt: skip
    else:  # Visual_Termination
        return {
            "video": video, "task_type": TASK_TYPES[subtask], "video_start_time": _t(start), "proactive": True,
            "conversations": [*_context(event, span=True), _answer(event)],
        }  # fmt: skip
    if start > 0:
        item["video_start_time"] = _t(start)
    return item


def annotation_items(streams: Iterable[Stream], subtask: str, video_pattern: str = "{name}") -> list[dict[str, Any]]:
    """Items of `subtask` (e.g. "Visual_Wake-Up") for every matching event of `streams`, in order.

    `video_pattern` names the recording: "{name}" for a bag folder, "{name}.mp4" for write_video's file; it may also
    use {seed}, {split} and {scenario}.
    """
    if subtask not in SUBTASKS.values():
        raise ValueError(f"unknown subtask {subtask!r} (known: {', '.join(SUBTASKS.values())})")
    items = []
    for stream in streams:
        video = video_pattern.format(name=stream.name, seed=stream.seed, split=stream.split, scenario=stream.scenario)
        items += [annotation_item(stream, e, video) for e in stream.events if SUBTASKS[e.scenario] == subtask]
    return items


def write_annotations(
    streams: Iterable[Stream], path: str | Path, subtask: str, video_pattern: str = "{name}"
) -> list[dict[str, Any]]:
    """Write the `subtask` annotation file (a JSON list, as ViSpeak-Bench's) and return its items."""
    items = annotation_items(streams, subtask, video_pattern)
    Path(path).write_text(json.dumps(items, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return items


def write_all_annotations(
    streams: Sequence[Stream], folder: str | Path, video_pattern: str = "{name}"
) -> dict[str, Path]:
    """One `<Subtask>.json` per subtask that has events among `streams`; returns subtask -> file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    present = {SUBTASKS[e.scenario] for s in streams for e in s.events}
    written = {}
    for subtask in SUBTASKS.values():
        if subtask in present:
            written[subtask] = folder / f"{subtask}.json"
            write_annotations(streams, written[subtask], subtask, video_pattern)
    return written


# ---- plain video + wav ------------------------------------------------------------------------------------------


def write_video(stream: Stream, path: str | Path, codec: str = "mp4v") -> tuple[Path, Path]:
    """The frames as a video at the stream's fps (mp4v works in opencv-python-headless) and the audio as a 16-bit
    16 kHz mono wav beside it (same name, .wav). Returns (video, wav)."""
    import cv2

    path = Path(path)
    wav_path = path.with_suffix(".wav")
    width, height = stream.size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), stream.fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {codec!r} video to {path}")
    try:
        for _, rgb in stream.frames:
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    pcm = np.round(np.clip(stream.audio, -1.0, 32767 / 32768) * 32768).astype("<i2")
    with wave.open(str(wav_path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(AUDIO_RATE)
        out.writeframes(pcm.tobytes())
    return path, wav_path
