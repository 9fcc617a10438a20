"""Read a rosbag2 recording into one-second segments, exactly as the node would cut the live stream.

Message types are registered from the definitions stored in the recording, so both audio_common flavours (and
any sensor_msgs version) decode without configuration. Camera, microphone and query topics are found by type
unless named. Messages are taken in recording order and go through the same conversions and segmenter as on a
robot; a message that fails to convert is counted and skipped, never fatal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vispeak_ros.core.segmenter import Segment, Segmenter, SegmenterConfig

IMAGE_TYPES = ("sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/Image")
AUDIO_TYPES = {
    "audio_common_msgs/msg/AudioStamped": "mgonzs13",
    "audio_common_msgs/msg/AudioDataStamped": "ros_drivers",
}
AUDIO_INFO_TYPE = "audio_common_msgs/msg/AudioInfo"
QUERY_TYPE = "std_msgs/msg/String"


class RecordingError(ValueError):
    """The recording cannot be read or lacks what is needed; the message names the file and the reason."""


@dataclass
class Topics:
    camera: str
    audio: str | None
    audio_flavour: str | None
    audio_info: str | None
    query: str | None


@dataclass
class SourceStats:
    messages: int = 0
    conversion_errors: int = 0
    last_error: str = ""
    per_topic: dict[str, int] = field(default_factory=dict)


def _pick(connections, types, wanted: str | None, what: str, path: Path, required: bool) -> str | None:
    candidates = sorted({c.topic for c in connections if c.msgtype in types})
    if wanted is not None:
        present = sorted({c.topic for c in connections})
        if wanted not in present:
            raise RecordingError(f"{path}: no topic {wanted} (topics: {', '.join(present)})")
        return wanted
    if not candidates:
        if required:
            raise RecordingError(f"{path}: no {what} topic (looked for types {', '.join(types)})")
        return None
    return candidates[0]


def find_topics(connections, path: Path, camera: str | None = None, audio: str | None = None) -> Topics:
    """Camera, microphone and query topics of a recording, by type unless named."""
    camera_topic = _pick(connections, IMAGE_TYPES, camera, "camera", path, required=True)
    audio_topic = _pick(connections, tuple(AUDIO_TYPES), audio, "audio", path, required=False)
    flavour = None
    if audio_topic is not None:
        msgtype = next(c.msgtype for c in connections if c.topic == audio_topic)
        if msgtype not in AUDIO_TYPES:
            raise RecordingError(f"{path}: topic {audio_topic} has type {msgtype}, not {' or '.join(AUDIO_TYPES)}")
        flavour = AUDIO_TYPES[msgtype]
    info = _pick(connections, (AUDIO_INFO_TYPE,), None, "audio info", path, required=False)
    query = _pick(connections, (QUERY_TYPE,), None, "query", path, required=False)
    return Topics(camera_topic, audio_topic, flavour, info if flavour == "ros_drivers" else None, query)


def read_segments(
    path: str | Path,
    config: SegmenterConfig | None = None,
    camera_topic: str | None = None,
    audio_topic: str | None = None,
    stats: SourceStats | None = None,
) -> Iterator[Segment]:
    """Segments of a rosbag2 directory (sqlite3 or mcap storage), in stream order."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    from vispeak_ros.ros.conversions import ConversionError
    from vispeak_ros.ros.conversions.audio import AudioStreamConverter
    from vispeak_ros.ros.conversions.image import decode_frame, frame_payload

    path = Path(path)
    if not path.exists():
        raise RecordingError(f"recording not found: {path}")
    stats = stats if stats is not None else SourceStats()
    try:
        reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        reader.open()
    except Exception as error:  # rosbags raises several types for unreadable files
        raise RecordingError(f"{path}: cannot open as a rosbag2 recording: {error}") from None
    try:
        topics = find_topics(reader.connections, path, camera_topic, audio_topic)
        if config is None:
            config = SegmenterConfig(expect_audio=topics.audio is not None)
        segmenter = Segmenter(config, decode_frame=decode_frame)
        microphone = AudioStreamConverter(topics.audio or "", flavour=topics.audio_flavour)
        wanted = {topics.camera, topics.audio, topics.audio_info, topics.query} - {None}
        connections = [c for c in reader.connections if c.topic in wanted]
        for connection, record_ns, raw in reader.messages(connections=connections):
            stats.messages += 1
            stats.per_topic[connection.topic] = stats.per_topic.get(connection.topic, 0) + 1
            try:
                msg = reader.deserialize(raw, connection.msgtype)
                if connection.topic == topics.camera:
                    payload = frame_payload(msg, connection.topic)
                    yield from segmenter.add_frame(payload.stamp_ns or record_ns, payload)
                elif connection.topic == topics.audio:
                    for chunk in microphone.convert(msg, stamp_ns=record_ns):
                        yield from segmenter.add_audio(chunk.stamp_ns, chunk.samples)
                elif connection.topic == topics.audio_info:
                    microphone.on_info(msg)
                else:
                    yield from segmenter.add_text(record_ns, str(msg.data))
            except ConversionError as error:
                stats.conversion_errors += 1
                stats.last_error = str(error)
        for chunk in microphone.flush():
            yield from segmenter.add_audio(chunk.stamp_ns, chunk.samples)
        yield from segmenter.flush()
    finally:
        reader.close()
