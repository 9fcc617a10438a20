"""Hostile messages of every input type (hypothesis strategies) and a sender that proves the node received them.

Shared by the fuzz tests (at most 300 examples per input type) and `python -m benchmarks fuzz` (10,000 and more).
Content strategies draw the message body only; stamps are separate (`hostile_stamps`), so a content fuzz can use a
valid, advancing clock and be checked exactly against the conversion functions, and a stamp fuzz can use valid
content.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from relkit import NS, Probe

from vispeak_ros.ros.conversions.image import encode_jpeg, encode_png

BASE_S = 2_000_000_000  # the fuzz runs at this sim time; valid streams afterwards are earlier: the clock jumps back
BATCH = 4  # below the node's sensor readers' keep-last-5 history
RGB = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
JPEG, PNG = encode_jpeg(RGB), encode_png(RGB)
PNG_BOMB = PNG[:16] + (100_000).to_bytes(4, "big") + (100_000).to_bytes(4, "big") + PNG[24:]  # claims 10 Gpixel
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


def flip(blob: bytes, bit: int) -> bytes:
    out = bytearray(blob)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def hostile_stamps() -> st.SearchStrategy[tuple[int, int]]:
    """(sec, nanosec): near the sim time (backwards and duplicate stamps among them), zero, int32 extremes, any
    int32 second, and nanoseconds past one second."""
    sec = st.one_of(
        st.integers(BASE_S - 3, BASE_S + 3),
        st.sampled_from([0, -1, 2**31 - 1, -(2**31)]),
        st.integers(-(2**31), 2**31 - 1),
    )
    nanosec = st.one_of(st.integers(0, NS - 1), st.sampled_from([NS, 2**32 - 1]))
    return st.tuples(sec, nanosec)


# Jitter of a valid stamp: on time, a duplicate of the previous one, or a little backwards.
JITTER_NS = st.sampled_from([0, 0, 0, -33_000_000, -66_000_000])

COMPRESSED_DATA = st.one_of(
    st.sampled_from([JPEG, PNG, PNG_BOMB, b""]),
    st.binary(max_size=256),
    st.integers(1, len(JPEG) - 1).map(lambda n: JPEG[:n]),  # truncated
    st.integers(0, len(JPEG) * 8 - 1).map(lambda bit: flip(JPEG, bit)),  # one bit flipped
    st.binary(max_size=64).map(lambda tail: JPEG[:3] + tail),  # JPEG magic, garbage after it
)
COMPRESSED_FORMAT = st.one_of(
    st.sampled_from(["jpeg", "png", "rgb8; jpeg compressed bgr8", "compressedDepth png", "h264", ""]), TEXT
)
COMPRESSED = st.fixed_dictionaries({"format": COMPRESSED_FORMAT, "blob": COMPRESSED_DATA})

RAW_ENCODING = st.one_of(st.sampled_from(["rgb8", "bgr8", "mono8", "rgb16", "yuv422", "nv12", "bayer_rggb8"]), TEXT)
DIMENSION = st.one_of(st.integers(0, 40), st.sampled_from([2**31, 2**32 - 1]))
RAW = st.fixed_dictionaries({
    "encoding": RAW_ENCODING, "height": DIMENSION, "width": DIMENSION,
    "step": st.one_of(st.integers(0, 200), st.just(2**32 - 1)), "size": st.integers(0, 5000),
    "bigendian": st.integers(0, 255),
})  # fmt: skip

FIELD_DTYPES = {"float32_data": np.float32, "int32_data": np.int32, "int16_data": np.int16, "int8_data": np.int8,
                "uint8_data": np.uint8}  # fmt: skip
RATES = st.one_of(st.sampled_from([16_000, 44_100, 48_000, 8_000]), st.sampled_from([0, 1, 999, 384_001, 2**31 - 1]),
                  st.integers(-(2**31), 2**31 - 1))  # fmt: skip
FLOATS = st.floats(width=32, allow_nan=True, allow_infinity=True)
MGONZS13 = st.fixed_dictionaries({
    "flag": st.sampled_from([1, 2, 8, 16, 32, 0, 4, 64]),
    "field": st.sampled_from(sorted(FIELD_DTYPES)),
    "channels": st.one_of(st.integers(1, 3), st.sampled_from([0, -1, 64, 65, 2**31 - 1])),
    "rate": RATES,
    "floats": hnp.arrays(np.float32, st.integers(0, 1200), elements=FLOATS),
    "ints": hnp.arrays(np.int64, st.integers(0, 1200), elements=st.integers(-128, 127)),
})  # fmt: skip

AUDIO_INFO = st.one_of(
    st.none(),
    st.fixed_dictionaries({
        "channels": st.integers(0, 255),
        "rate": st.one_of(RATES.filter(lambda r: r >= 0), st.just(2**32 - 1)),
        "sample_format": st.one_of(st.sampled_from(["S16LE", "F32LE", "S24LE", "U8", "F64LE"]), TEXT),
        "coding": st.one_of(st.sampled_from(["wave", "mp3"]), TEXT),
    }),
)  # fmt: skip
AUDIO_BYTES = st.one_of(st.binary(max_size=2000), st.just(np.full(400, np.nan, "<f4").tobytes()))

QUERY = st.one_of(st.text(st.characters(blacklist_categories=("Cs",)), max_size=300),
                  st.sampled_from(["", "   ", "\n", "a" * 4000]))  # fmt: skip


class Builder:
    """Messages of the node's input types, built with the probe's typestore."""

    def __init__(self, probe: Probe) -> None:
        self.new = probe.new

    def stamp(self, sec: int, nanosec: int) -> Any:
        return self.new("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)

    def header(self, stamp: tuple[int, int]) -> Any:
        return self.new("std_msgs/msg/Header", stamp=self.stamp(*stamp), frame_id="camera")

    def compressed(self, stamp: tuple[int, int], format: str, blob: bytes) -> Any:
        return self.new("sensor_msgs/msg/CompressedImage", header=self.header(stamp), format=format,
                        data=np.frombuffer(blob, np.uint8))  # fmt: skip

    def raw(self, stamp: tuple[int, int], encoding: str, height: int, width: int, step: int, size: int,
            bigendian: int, fill: np.ndarray | None = None) -> Any:  # fmt: skip
        data = np.full(size, 7, np.uint8) if fill is None else fill
        return self.new("sensor_msgs/msg/Image", header=self.header(stamp), height=height, width=width,
                        encoding=encoding, is_bigendian=bigendian, step=step, data=data)  # fmt: skip

    def mgonzs13(self, stamp: tuple[int, int], flag: int, field: str, channels: int, rate: int, floats: np.ndarray,
                 ints: np.ndarray) -> Any:  # fmt: skip
        samples = floats if field == "float32_data" else ints.astype(FIELD_DTYPES[field])
        info = self.new("audio_common_msgs/msg/AudioInfo", format=flag, channels=channels, rate=rate, chunk=0)
        empty = {name: np.zeros(0, dtype) for name, dtype in FIELD_DTYPES.items()}
        audio_data = self.new("audio_common_msgs/msg/AudioData", **{**empty, field: samples})
        chunk = self.new("audio_common_msgs/msg/Audio", audio_data=audio_data, info=info)
        return self.new("audio_common_msgs/msg/AudioStamped", header=self.header(stamp), audio=chunk)

    def ros_drivers_info(self, channels: int, rate: int, sample_format: str, coding: str) -> Any:
        return self.new("audio_common_msgs/msg/AudioInfo", channels=channels, sample_rate=rate,
                        sample_format=sample_format, bitrate=0, coding_format=coding)  # fmt: skip

    def ros_drivers_audio(self, stamp: tuple[int, int], blob: bytes) -> Any:
        chunk = self.new("audio_common_msgs/msg/AudioData", data=np.frombuffer(blob, np.uint8))
        return self.new("audio_common_msgs/msg/AudioDataStamped", header=self.header(stamp), audio=chunk)

    def query(self, text: str) -> Any:
        return self.new("std_msgs/msg/String", data=text)


class Clock:
    """Valid stamps of one input: advancing by `step_ns` from `start_ns`, with the drawn jitter applied."""

    def __init__(self, start_ns: int, step_ns: int) -> None:
        self.next_ns, self.step_ns = start_ns, step_ns

    def stamp(self, jitter_ns: int = 0) -> tuple[int, int]:
        ns = self.next_ns + jitter_ns
        self.next_ns += self.step_ns
        return ns // NS, ns % NS


class Sender:
    """Publishes messages and, every `batch`, waits until the node's diagnostics count them received."""

    def __init__(self, probe: Probe, msg_type: str, topic: str, qos: Any = None, batch: int = BATCH) -> None:
        self.probe, self.key, self.batch = probe, f"received {topic.lstrip('/')}", batch
        self.pub = probe.publisher(msg_type, topic, qos)
        self.sent = 0
        self.start = 0

    def send(self, msg: Any) -> None:
        self.pub.publish(msg)
        self.sent += 1
        if self.sent % self.batch == 0:
            self.wait()

    def received(self) -> int:
        return self.probe.count(self.key) - self.start

    def wait(self, timeout_s: float = 30.0) -> None:
        target = self.start + self.sent
        assert self.probe.wait_diagnostics(lambda v: int(v.get(self.key, 0)) >= target, timeout_s), (
            f"{self.key}: the node received {self.received()} of {self.sent}"
        )


def counts(probe: Probe, *keys: str) -> dict[str, int]:
    return {key: probe.count(key) for key in keys}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before[key] for key in after}


def settle(probe: Probe, *senders: Sender) -> None:
    """Everything sent was received, and one more diagnostics report came after it (the counts are final)."""
    for sender in senders:
        sender.wait()
    probe.wait_diagnostics(lambda v: True, 5.0)
