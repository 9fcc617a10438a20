"""A tolerant MCAP reader: bare `.mcap` files (Foxglove, other MCAP writers) and the files inside rosbag2 folders.

Why our own: rosbags' reader needs a rosbag2 folder with `metadata.yaml`, insists on the `ros2` profile and refuses a
file without a valid footer, so a recording cut short by a crash (no summary) could not be replayed at all. This
reader follows the MCAP format specification (mcap.dev/spec) and reads what it can:

- with an intact summary (footer -> schemas, channels, chunk indexes) it reads chunk by chunk through the index, so
  a corrupt chunk (bad CRC, bad compression, bad record inside) costs that chunk only;
- without one (truncated or still being written) it scans the data section from the start and stops at the first
  record it cannot frame, reporting the byte offset.

Every skipped part is described in `problems` (one line each). Messages come in file order, each chunk's messages
sorted by log time (as rosbags does within a chunk). Chunks are decompressed one at a time (none, lz4, zstd), so
memory stays bounded by the largest chunk.
"""

from __future__ import annotations

import struct
from binascii import crc32
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

MAGIC = b"\x89MCAP0\r\n"
OP_HEADER, OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
OP_CHUNK_INDEX, OP_STATISTICS, OP_DATA_END = 0x08, 0x0B, 0x0F
FOOTER_SIZE = 1 + 8 + 8 + 8 + 4  # opcode, record length, summary start, summary offset start, summary crc


class McapError(ValueError):
    """The file cannot be read as MCAP at all (the message says why)."""


@dataclass(frozen=True)
class Schema:
    id: int
    name: str
    encoding: str  # ros2msg, ros2idl, omgidl, ... ("" for none)
    data: str


@dataclass(frozen=True)
class Channel:
    id: int
    schema_id: int
    topic: str
    message_encoding: str  # "cdr" for ROS 2
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Chunk:
    offset: int  # file offset of the chunk record's opcode
    length: int  # record length (content)
    start_ns: int
    end_ns: int


class _Reader:
    """Little-endian MCAP primitives over a bytes-like record body."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes | memoryview) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, size: int) -> memoryview:
        if size < 0 or self.pos + size > len(self.data):
            raise McapError(f"record field of {size} bytes runs past its record")
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "little")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")

    def string(self) -> str:
        return bytes(self.take(self.u32())).decode("utf-8", errors="replace")

    def string_map(self) -> dict[str, str]:
        end = self.pos + self.u32()
        out = {}
        while self.pos < end:
            key = self.string()
            out[key] = self.string()
        return out


def _decompress(compression: str, data: bytes, size: int) -> bytes:
    if compression == "":
        return data
    if compression == "lz4":
        from lz4.frame import decompress

        return decompress(data)
    if compression == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]  # novermin (Python 3.14)
        except ImportError:
            from backports import zstd  # type: ignore[import-not-found,no-redef]  # a rosbags dependency
        return zstd.decompress(data)
    raise McapError(f"unsupported chunk compression {compression!r} (supported: none, lz4, zstd)")


class McapFile:
    """One MCAP file: `schemas`, `channels`, `start_ns`/`end_ns`, `messages()` and the `problems` met."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.schemas: dict[int, Schema] = {}
        self.channels: dict[int, Channel] = {}
        self.problems: list[str] = []
        self.profile = ""
        self.start_ns: int | None = None
        self.end_ns: int | None = None
        self._chunks: list[_Chunk] | None = None  # from the summary; None: scan linearly
        self._size = self.path.stat().st_size
        with self.path.open("rb") as handle:
            head = handle.read(8)
            if head != MAGIC:
                raise McapError("not an MCAP file (bad magic bytes)" if head else "empty file")
            self._data_start = 8
            self._read_header(handle)
            if not self._read_summary(handle):
                self._scan_metadata(handle)

    # ---- opening -------------------------------------------------------------------------------------------------
    def _read_header(self, handle: BinaryIO) -> None:
        record = self._record_at(handle, 8)
        if record is None or record[0] != OP_HEADER:
            raise McapError("no MCAP header record after the magic bytes")
        self.profile = _Reader(record[1]).string()
        self._data_start = handle.tell()

    def _record_at(self, handle: BinaryIO, offset: int) -> tuple[int, bytes] | None:
        """(opcode, body) of the record at `offset`, or None where the file ends inside it."""
        handle.seek(offset)
        frame = handle.read(9)
        if len(frame) < 9:
            return None
        opcode, length = frame[0], int.from_bytes(frame[1:], "little")
        if offset + 9 + length > self._size:
            return None
        return opcode, handle.read(length)

    def _read_summary(self, handle: BinaryIO) -> bool:
        """Schemas, channels and chunk indexes from the summary section; False when there is no usable one."""
        if self._size < self._data_start + FOOTER_SIZE + 8:
            return False
        handle.seek(self._size - 8)
        if handle.read(8) != MAGIC:
            return False
        footer = self._record_at(handle, self._size - 8 - FOOTER_SIZE)
        if footer is None or footer[0] != OP_FOOTER:
            return False
        summary_start = _Reader(footer[1]).u64()
        if summary_start == 0 or not self._data_start <= summary_start < self._size:
            return False
        chunks: list[_Chunk] = []
        try:
            offset = summary_start
            while offset < self._size - 8 - FOOTER_SIZE:
                record = self._record_at(handle, offset)
                if record is None:
                    return False
                opcode, body = record
                offset += 9 + len(body)
                if opcode == OP_SCHEMA:
                    self._add_schema(body)
                elif opcode == OP_CHANNEL:
                    self._add_channel(body)
                elif opcode == OP_CHUNK_INDEX:
                    r = _Reader(body)
                    start_ns, end_ns, chunk_offset, chunk_length = r.u64(), r.u64(), r.u64(), r.u64()
                    chunks.append(_Chunk(chunk_offset, chunk_length - 9, start_ns, end_ns))
                elif opcode == OP_STATISTICS:
                    r = _Reader(body)
                    count = r.u64()
                    r.take(2 + 4 + 4 + 4 + 4)
                    if count:
                        self.start_ns, self.end_ns = r.u64(), r.u64()
        except McapError:
            self.schemas.clear()
            self.channels.clear()
            return False
        if not chunks or not self.channels:
            self.schemas.clear()
            self.channels.clear()
            return False  # unchunked files and summaries without indexes: read linearly
        self._chunks = sorted(chunks, key=lambda c: c.offset)
        if self.start_ns is None:
            self.start_ns = min(c.start_ns for c in chunks)
            self.end_ns = max(c.end_ns for c in chunks)
        return True

    def _scan_metadata(self, handle: BinaryIO) -> None:
        """Without a summary: one pass for schemas, channels and the time range (chunks are decompressed)."""
        for opcode, body, _ in self._records(handle, report=False):
            if opcode == OP_SCHEMA:
                self._add_schema(body)
            elif opcode == OP_CHANNEL:
                self._add_channel(body)
            elif opcode == OP_MESSAGE and len(body) >= 22:
                log_time = int.from_bytes(body[6:14], "little")
                self.start_ns = log_time if self.start_ns is None else min(self.start_ns, log_time)
                self.end_ns = log_time if self.end_ns is None else max(self.end_ns, log_time)

    def _add_schema(self, body: bytes | memoryview) -> None:
        r = _Reader(body)
        schema_id, name, encoding = r.u16(), r.string(), r.string()
        data = bytes(r.take(r.u32())).decode("utf-8", errors="replace")
        self.schemas.setdefault(schema_id, Schema(schema_id, name, encoding, data))

    def _add_channel(self, body: bytes | memoryview) -> None:
        r = _Reader(body)
        channel_id, schema_id, topic, encoding = r.u16(), r.u16(), r.string(), r.string()
        self.channels.setdefault(channel_id, Channel(channel_id, schema_id, topic, encoding, r.string_map()))

    # ---- reading -------------------------------------------------------------------------------------------------
    def _records(self, handle: BinaryIO, report: bool = True) -> Iterator[tuple[int, memoryview, int]]:
        """(opcode, body, file offset) of the data section in file order; chunks are opened and their records
        yielded in place. Stops at Data End or the first record that cannot be framed (reported)."""
        offset = self._data_start
        while offset < self._size:
            record = self._record_at(handle, offset)
            if record is None:
                if report:
                    self.problems.append(
                        f"{self.path}: truncated at byte {offset} of {self._size} (a record runs past the end); "
                        "the rest is lost"
                    )
                return
            opcode, body = record
            if opcode in (OP_DATA_END, OP_FOOTER):
                return
            if opcode == OP_CHUNK:
                records = self._chunk_records(body, offset, report)
                for inner_op, inner_body in records:
                    yield inner_op, inner_body, offset
            else:
                yield opcode, memoryview(body), offset
            offset += 9 + len(body)

    def _chunk_records(self, body: bytes, offset: int, report: bool) -> list[tuple[int, memoryview]]:
        """The records inside one chunk record, or [] (reported) when it is corrupt."""
        span = ""
        try:
            r = _Reader(body)
            start_ns, end_ns, size, crc = r.u64(), r.u64(), r.u64(), r.u32()
            span = f" (log time {start_ns / 1e9:.3f}-{end_ns / 1e9:.3f} s)"
            compression = r.string()
            data = _decompress(compression, bytes(r.take(r.u64())), size)
            if len(data) != size:
                raise McapError(f"decompressed to {len(data)} bytes, header says {size}")
            if crc and crc32(data) != crc:
                raise McapError("CRC mismatch")
            inner = _Reader(data)
            out = []
            while inner.pos < len(data):
                opcode = inner.take(1)[0]
                out.append((opcode, inner.take(inner.u64())))
            return out
        except Exception as error:  # lz4/zstd raise their own types for damaged data
            if report:
                self.problems.append(f"{self.path}: chunk at byte {offset}{span} skipped: {error}")
            return []

    def messages(self, channel_ids: set[int] | None = None) -> Iterator[tuple[Channel, int, memoryview]]:
        """(channel, log time ns, CDR bytes) in file order; each chunk's messages sorted by log time."""
        with self.path.open("rb") as handle:
            blocks = self._indexed_blocks(handle) if self._chunks is not None else self._linear_blocks(handle)
            for block in blocks:
                block.sort(key=lambda m: m[1])
                for channel_id, log_time, data in block:
                    if channel_ids is None or channel_id in channel_ids:
                        channel = self.channels.get(channel_id)
                        if channel is not None:
                            yield channel, log_time, data

    def _indexed_blocks(self, handle: BinaryIO) -> Iterator[list[tuple[int, int, memoryview]]]:
        for chunk in self._chunks or ():
            record = self._record_at(handle, chunk.offset)
            if record is None or record[0] != OP_CHUNK:
                self.problems.append(f"{self.path}: chunk index points at byte {chunk.offset}, no chunk there; skipped")
                continue
            yield self._messages_of(self._chunk_records(record[1], chunk.offset, True))

    def _linear_blocks(self, handle: BinaryIO) -> Iterator[list[tuple[int, int, memoryview]]]:
        block: list[tuple[int, memoryview]] = []
        current = -1
        for opcode, body, offset in self._records(handle):
            if offset != current and block:
                yield self._messages_of(block)
                block = []
            current = offset
            if opcode == OP_SCHEMA:
                self._add_schema(body)
            elif opcode == OP_CHANNEL:
                self._add_channel(body)
            else:
                block.append((opcode, body))
        if block:
            yield self._messages_of(block)

    def _messages_of(self, records: list[tuple[int, memoryview]]) -> list[tuple[int, int, memoryview]]:
        out = []
        for opcode, body in records:
            if opcode != OP_MESSAGE:
                continue
            if len(body) < 22:
                self.problems.append(f"{self.path}: a message record of {len(body)} bytes is too short; skipped")
                continue
            channel_id, _sequence, log_time, _publish = struct.unpack_from("<HIQQ", body)
            out.append((channel_id, log_time, body[22:]))
        return out


def is_mcap(path: Path) -> bool:
    """Whether `path` is a file starting with the MCAP magic bytes."""
    try:
        with path.open("rb") as handle:
            return handle.read(8) == MAGIC
    except OSError:
        return False
