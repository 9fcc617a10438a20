"""Write what the assistant said into a rosbag2 recording (MCAP by default), stamped and recorded in stream time.

Topics: `/vispeak/feedback` (vispeak_ros/msg/Feedback), `/vispeak/events` (Event) and `/vispeak/informative`
(Informative), the names the node publishes under its default namespace. The recording stores our message
definitions, so Foxglove or `ros2 bag play` read it without our package. `copy()` adds an input topic's messages
as they were recorded (bytes and stored definition untouched).

`single_file=True` writes one `.mcap` file at `path` instead of a rosbag2 folder: rosbags writes the folder beside
it (hidden) and the MCAP file, which carries the rosbag2 metadata inside, is moved into place on close. Foxglove
opens that file directly, and so do `ros2 bag play` (Iron and later; Humble with `-s mcap`) and vispeak-replay.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from vispeak_ros.core.clock import ns_to_stamp

FEEDBACK_TOPIC = "/vispeak/feedback"
EVENTS_TOPIC = "/vispeak/events"
INFORMATIVE_TOPIC = "/vispeak/informative"


class OutputBag:
    """Context manager: `with OutputBag(path) as bag: bag.feedback(...); bag.event(...)`."""

    def __init__(
        self,
        path: str | Path,
        storage: str = "mcap",
        frame_id: str = "camera",
        typestore: Any = None,
        single_file: bool = False,
    ):
        from rosbags.rosbag2 import StoragePlugin, Writer

        from vispeak_ros import interfaces

        if storage not in ("mcap", "sqlite3"):
            raise ValueError(f"storage must be mcap or sqlite3, got {storage!r}")
        if single_file and storage != "mcap":
            raise ValueError("single_file needs storage mcap")
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"output recording already exists: {self.path}")
        self.frame_id = frame_id
        self.store = typestore if typestore is not None else interfaces.typestore()
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._folder = self.path.with_name(f".{self.path.name}.partial") if single_file else self.path
        if single_file and self._folder.exists():
            shutil.rmtree(self._folder)  # left by an interrupted earlier run of ours
        self._writer = Writer(self._folder, version=9, storage_plugin=plugin)  # type: ignore[arg-type]
        self._connections: dict[tuple[str, str], Any] = {}
        self.counts: dict[str, int] = {}
        self.on_write: Any = None  # optional callback(topic, message) for every message made by write()

    def __enter__(self) -> OutputBag:
        self._writer.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()
        if self._folder != self.path:
            files = sorted(self._folder.glob("*.mcap"))
            if len(files) != 1:
                raise OSError(f"expected one MCAP file in {self._folder}, found {len(files)}")
            files[0].replace(self.path)
            shutil.rmtree(self._folder)

    def copy(self, topic: str, msgtype: str, msgdef: str, record_ns: int, raw: bytes | memoryview) -> None:
        """An input message as recorded: raw CDR bytes, its stored definition (`msgdef` "" = from the store)."""
        key = (topic, msgtype)
        if key not in self._connections:
            if msgdef:
                self._connections[key] = self._writer.add_connection(
                    topic, msgtype, msgdef=msgdef, rihs01=self.store.hash_rihs01(msgtype)
                )
            else:
                self._connections[key] = self._writer.add_connection(topic, msgtype, typestore=self.store)
        self._writer.write(self._connections[key], record_ns, raw)
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def _time(self, ns: int) -> Any:
        return self.store.types["builtin_interfaces/msg/Time"](*ns_to_stamp(ns))

    def _header(self, stamp_ns: int) -> Any:
        return self.store.types["std_msgs/msg/Header"](stamp=self._time(stamp_ns), frame_id=self.frame_id)

    def write(self, topic: str, msgtype: str, record_ns: int, msg: Any) -> None:
        """Any message of the bag's type store, recorded at `record_ns` (stream time)."""
        key = (topic, msgtype)
        if key not in self._connections:
            self._connections[key] = self._writer.add_connection(topic, msgtype, typestore=self.store)
        self._writer.write(self._connections[key], record_ns, self.store.serialize_cdr(msg, msgtype))
        self.counts[topic] = self.counts.get(topic, 0) + 1
        if self.on_write is not None:
            self.on_write(topic, msg)

    def feedback(
        self,
        stamp_ns: int,
        text: str,
        partial: bool,
        answer_id: int,
        trigger: int,
        segment_index: int,
        trigger_stamp_ns: int,
        informative_score: float,
        latency_s: float,
    ) -> None:
        msgtype = "vispeak_ros/msg/Feedback"
        msg = self.store.types[msgtype](
            header=self._header(stamp_ns), text=text, partial=partial, answer_id=answer_id, trigger=int(trigger),
            segment_index=segment_index, trigger_stamp=self._time(trigger_stamp_ns),
            informative_score=float(informative_score), latency_s=float(latency_s),
        )  # fmt: skip
        self.write(FEEDBACK_TOPIC, msgtype, stamp_ns, msg)

    def event(
        self, stamp_ns: int, behaviour: int, confidence: float, text: str, answer_id: int, segment_index: int
    ) -> None:
        msgtype = "vispeak_ros/msg/Event"
        msg = self.store.types[msgtype](
            header=self._header(stamp_ns), type=int(behaviour), confidence=float(confidence), text=text,
            answer_id=answer_id, segment_index=segment_index,
        )  # fmt: skip
        self.write(EVENTS_TOPIC, msgtype, stamp_ns, msg)

    def informative(
        self, stamp_ns: int, segment_index: int, probability: float, running_sum: float, threshold: float, fired: bool
    ) -> None:
        msgtype = "vispeak_ros/msg/Informative"
        msg = self.store.types[msgtype](
            header=self._header(stamp_ns), segment_index=segment_index, probability=float(probability),
            running_sum=float(running_sum), threshold=float(threshold), triggered=bool(fired),
        )  # fmt: skip
        self.write(INFORMATIVE_TOPIC, msgtype, stamp_ns, msg)
