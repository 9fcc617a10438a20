"""Read a recording into one-second segments, exactly as the node would cut the live stream.

Recordings: rosbag2 folders in mcap or sqlite3 storage, and bare `.mcap` files without `metadata.yaml` (as Foxglove
and other MCAP writers produce). `open_recording` gives one `Recording` for all of them: its connections, a type
store with the types registered from the definitions stored in the recording (so both audio_common flavours and any
sensor_msgs version decode without configuration), and its raw messages in recording order. MCAP is read by our
tolerant reader (`replay_mcap`): a truncated or partly corrupt file gives what is readable, and `problems` says
what was skipped. sqlite3 is read by rosbags.

Camera, microphone and query topics are found by type unless named. Messages go through the same conversions and
segmenter as on a robot; a message that fails to decode or convert is counted and skipped, never fatal.
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
    decode_errors: int = 0  # messages whose bytes do not deserialise with their type
    segmenter: object = None  # the segmenter's own counters (core.segmenter.SegmenterStats) once reading started


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


# ---- recordings ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """One topic of a recording, with the message definition stored for it ("" when none was stored)."""

    topic: str
    msgtype: str
    msgdef: str
    msgdef_format: str  # "ros2msg", "ros2idl" or "" (none stored)
    digest: str = ""  # RIHS01 hash when the recording stored one
    key: object = None  # the reader's own handle (MCAP channel id, rosbags connection)


class Recording:
    """A readable recording: `connections`, `typestore`, `messages()`, the time range and the `problems` met."""

    kind = "recording"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.connections: list[Connection] = []
        self.typestore = None
        self.start_ns: int | None = None
        self.end_ns: int | None = None
        self._problems: list[str] = []

    @property
    def problems(self) -> list[str]:
        """What was skipped, one line each (file and reason); grows while `messages()` runs."""
        return list(self._problems)

    def messages(self, topics: set[str] | None = None) -> Iterator[tuple[Connection, int, bytes | memoryview]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release file handles (readers here hold none between calls; sqlite3 does)."""

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def name(self) -> str:
        """The recording's name for output files: the folder name, or the file name without its suffix."""
        return self.path.name if self.path.is_dir() else self.path.stem


class McapRecording(Recording):
    """A bare MCAP file or the MCAP files of a rosbag2 folder, read in order with `replay_mcap.McapFile`."""

    def __init__(self, path: Path, files: list[Path]) -> None:
        from vispeak_ros.tools.replay_mcap import McapError, McapFile

        super().__init__(path)
        self.kind = "rosbag2 mcap" if path.is_dir() else "mcap file"
        self.files: list[McapFile] = []
        for file in files:
            if not file.is_file():
                self._problems.append(f"{file}: listed in metadata.yaml but missing; skipped")
                continue
            try:
                self.files.append(McapFile(file))
            except (McapError, OSError) as error:
                if len(files) == 1:
                    raise RecordingError(f"{file}: cannot read as MCAP: {error}") from None
                self._problems.append(f"{file}: cannot read as MCAP ({error}); skipped")
        if not self.files:
            raise RecordingError(f"{path}: no readable MCAP file")
        seen: dict[tuple[str, str], Connection] = {}
        for index, file in enumerate(self.files):
            for channel in file.channels.values():
                schema = file.schemas.get(channel.schema_id)
                if channel.message_encoding != "cdr":
                    self._problems.append(
                        f"{file.path}: topic {channel.topic} is {channel.message_encoding!r}-encoded, not cdr; skipped"
                    )
                    continue
                name = schema.name if schema is not None else ""
                fmt = schema.encoding if schema is not None and schema.encoding in ("ros2msg", "ros2idl") else ""
                connection = Connection(channel.topic, name, schema.data if fmt else "", fmt, key=channel.topic)
                seen.setdefault((channel.topic, name), connection)
            starts = [f.start_ns for f in self.files[: index + 1] if f.start_ns is not None]
            ends = [f.end_ns for f in self.files[: index + 1] if f.end_ns is not None]
            self.start_ns = min(starts) if starts else None
            self.end_ns = max(ends) if ends else None
        self.connections = list(seen.values())
        self.typestore = build_typestore(self.connections, path)

    @property
    def problems(self) -> list[str]:
        return self._problems + [p for f in self.files for p in f.problems]

    def messages(self, topics: set[str] | None = None) -> Iterator[tuple[Connection, int, bytes | memoryview]]:
        by_topic = {c.topic: c for c in self.connections}
        for file in self.files:
            ids = {
                cid
                for cid, channel in file.channels.items()
                if channel.topic in by_topic and (topics is None or channel.topic in topics)
            }
            for channel, log_time, data in file.messages(ids):
                yield by_topic[channel.topic], log_time, data


class Sqlite3Recording(Recording):
    """A rosbag2 folder in sqlite3 storage, read with rosbags; a database error mid-way ends the read, reported."""

    kind = "rosbag2 sqlite3"

    def __init__(self, path: Path) -> None:
        from rosbags.rosbag2 import Reader

        super().__init__(path)
        try:
            self._reader = Reader(path)
            self._reader.open()
        except Exception as error:  # rosbags and apsw raise several types for unreadable files
            raise RecordingError(f"{path}: cannot open as a rosbag2 sqlite3 recording: {_one_line(error)}") from None
        formats = {"MSG": "ros2msg", "IDL": "ros2idl"}
        for c in self._reader.connections:
            fmt = formats.get(c.msgdef.format.name, "")
            self.connections.append(Connection(c.topic, c.msgtype, c.msgdef.data if fmt else "", fmt, c.digest, c))
        if self._reader.message_count:
            self.start_ns, self.end_ns = self._reader.start_time, self._reader.end_time
        self._expected = self._reader.message_count
        self.typestore = build_typestore(self.connections, path)

    def messages(self, topics: set[str] | None = None) -> Iterator[tuple[Connection, int, bytes | memoryview]]:
        wanted = [c for c in self.connections if topics is None or c.topic in topics]
        by_key = {id(c.key): c for c in wanted}
        read = 0
        try:
            for connection, stamp, data in self._reader.messages(connections=[c.key for c in wanted]):
                read += 1
                yield by_key[id(connection)], stamp, data
        except Exception as error:  # a damaged database page: keep what was read
            self._problems.append(
                f"{self.path}: read stopped after {read} messages: {_one_line(error)}; the rest is skipped"
            )

    def close(self) -> None:
        if getattr(self, "_reader", None) is not None:
            self._reader.close()
            self._reader = None


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) < 300 else text[:297] + "..."


def build_typestore(connections: list[Connection], path: Path):
    """A rosbags type store with every type registered from the definitions stored in the recording.

    Topics recorded without a definition fall back to ROS 2 Humble's standard types, ours and the audio_common
    flavour their type names imply (AudioStamped: mgonzs13; AudioDataStamped: ros-drivers).
    """
    from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

    types: dict = {}
    missing = []
    for connection in connections:
        try:
            if connection.msgdef_format == "ros2msg":
                types.update(get_types_from_msg(connection.msgdef, connection.msgtype))
            elif connection.msgdef_format == "ros2idl":
                separator = "=" * 80 + "\n"
                if connection.msgdef.startswith(f"{separator}IDL: "):
                    for part in connection.msgdef.split(separator)[1:]:
                        types.update(get_types_from_idl(part.split("\n", 1)[1]))
                else:
                    types.update(get_types_from_idl(connection.msgdef))
            else:
                missing.append(connection.msgtype)
        except Exception as error:  # rosbags' parser raises its own types for bad definitions
            raise RecordingError(
                f"{path}: the definition stored for {connection.msgtype} (topic {connection.topic}) does not parse: "
                f"{_one_line(error)}"
            ) from None
    store = get_typestore(Stores.EMPTY)
    try:
        store.register(types)
    except Exception as error:
        raise RecordingError(f"{path}: conflicting message definitions: {_one_line(error)}") from None
    if missing:
        from vispeak_ros.ros import audio_common

        names = {c.msgtype for c in connections}
        flavour = "ros_drivers" if "audio_common_msgs/msg/AudioDataStamped" in names else "mgonzs13"
        fallback = audio_common.typestore(flavour)
        store.register({k: v for k, v in fallback.fielddefs.items() if k not in store.fielddefs})
    return store


def open_recording(path: str | Path) -> Recording:
    """The recording at `path`: a rosbag2 folder (mcap or sqlite3) or a bare `.mcap` file. RecordingError names
    the file and the reason when it cannot be read."""
    from vispeak_ros.tools.replay_mcap import is_mcap

    path = Path(path)
    if not path.exists():
        raise RecordingError(f"recording not found: {path}")
    if path.is_file():
        if is_mcap(path):
            return McapRecording(path, [path])
        if path.suffix == ".db3":
            raise RecordingError(f"{path}: a sqlite3 bag file needs its rosbag2 folder (with metadata.yaml)")
        if path.suffix == ".mcap":
            raise RecordingError(f"{path}: not an MCAP file (bad magic bytes)")
        raise RecordingError(f"{path}: unknown recording format (expected a rosbag2 folder or an .mcap file)")
    metadata = path / "metadata.yaml"
    if not metadata.is_file():
        files = sorted(path.glob("*.mcap"))
        if files:
            return McapRecording(path, files)
        raise RecordingError(f"{path}: not a rosbag2 recording (no metadata.yaml and no .mcap file)")
    info = _read_metadata(metadata)
    storage = info.get("storage_identifier")
    if storage == "mcap":
        names = info.get("relative_file_paths") or [p.name for p in sorted(path.glob("*.mcap"))]
        return McapRecording(path, [path / Path(str(name)).name for name in names])
    if storage == "sqlite3":
        return Sqlite3Recording(path)
    raise RecordingError(f"{path}: unknown storage {storage!r} in metadata.yaml (supported: mcap, sqlite3)")


def _read_metadata(metadata: Path) -> dict:
    import yaml

    try:
        document = yaml.safe_load(metadata.read_text(encoding="utf-8"))
        info = document["rosbag2_bagfile_information"]
        if not isinstance(info, dict):
            raise TypeError("rosbag2_bagfile_information is not a mapping")
    except Exception as error:  # YAML errors, a missing key, a wrong layout
        raise RecordingError(f"{metadata}: cannot open as a rosbag2 recording: {_one_line(error)}") from None
    if info.get("compression_mode"):
        raise RecordingError(
            f"{metadata}: compressed rosbag2 recordings ({info.get('compression_format')} per "
            f"{str(info['compression_mode']).lower()}) are not supported; decompress with `ros2 bag convert`"
        )
    return info


# ---- segments -----------------------------------------------------------------------------------------------------


def read_segments(
    path: str | Path | Recording,
    config: SegmenterConfig | None = None,
    camera_topic: str | None = None,
    audio_topic: str | None = None,
    stats: SourceStats | None = None,
    on_message=None,
    segmenter_options: dict | None = None,
) -> Iterator[Segment]:
    """Segments of a recording (a path or an open `Recording`), in stream order.

    `on_message(connection, record_ns, raw)`, when given, sees every message of every topic (to copy the input
    into an output recording) except messages of the assistant's topics that do not decode (counted in `stats`);
    otherwise only the topics the assistant uses are read. `segmenter_options` are
    SegmenterConfig fields used when `config` is None (e.g. the assistant's frame policy).
    """
    from vispeak_ros.ros.conversions import ConversionError
    from vispeak_ros.ros.conversions.audio import AudioStreamConverter
    from vispeak_ros.ros.conversions.image import decode_frame, frame_payload

    recording = path if isinstance(path, Recording) else open_recording(path)
    stats = stats if stats is not None else SourceStats()
    try:
        topics = find_topics(recording.connections, recording.path, camera_topic, audio_topic)
        if config is None:
            config = SegmenterConfig(expect_audio=topics.audio is not None, **(segmenter_options or {}))
        segmenter = Segmenter(config, decode_frame=decode_frame)
        stats.segmenter = segmenter.stats
        microphone = AudioStreamConverter(topics.audio or "", flavour=topics.audio_flavour)
        wanted = {topics.camera, topics.audio, topics.audio_info, topics.query} - {None}
        store = recording.typestore
        for connection, record_ns, raw in recording.messages(None if on_message is not None else wanted):
            if connection.topic not in wanted:
                on_message(connection, record_ns, raw)  # copied as recorded, not decoded
                continue
            stats.messages += 1
            stats.per_topic[connection.topic] = stats.per_topic.get(connection.topic, 0) + 1
            try:
                msg = store.deserialize_cdr(raw, connection.msgtype)
            except Exception as error:  # damaged bytes: rosbags raises several types
                stats.decode_errors += 1
                stats.last_error = f"{connection.topic}: message at {record_ns} does not decode: {_one_line(error)}"
                continue
            if on_message is not None:
                on_message(connection, record_ns, raw)
            try:
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
        if not isinstance(path, Recording):
            recording.close()


def with_our_types(store):
    """`store` plus our vispeak_ros messages and the standard types they need, where it lacks them (for an output
    recording or a DDS node that carries both the input topics and the assistant's outputs)."""
    from rosbags.typesys import get_types_from_msg

    from vispeak_ros import interfaces

    base = interfaces.typestore()
    wanted = dict(base.fielddefs)
    for name, text in interfaces.message_definitions().items():
        wanted.update(get_types_from_msg(text, name))
    store.register({k: v for k, v in wanted.items() if k not in store.fielddefs})
    return store
