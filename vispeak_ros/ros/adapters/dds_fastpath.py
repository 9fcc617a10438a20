"""The one place that writes and takes pre-serialised CDR through the `cyclonedds` binding's lower layer.

Why: the binding's typed path (de)serialises in Python, about 25-30 ms for a 640x480 rgb8 Image, which caps a
subscriber near 30 fps on a small machine; `rosbags` produces the same CDR bytes in 0.1-0.3 ms. The binding's
C extension (`cyclonedds._clayer`) already moves samples as serialised bytes: `ddspy_write(writer, bytes)` and
`ddspy_take(reader, mask, n) -> [(bytes, SampleInfo)]`, which its own DataWriter/DataReader wrap after Python
serialisation. That layer is private API, so it is wrapped here, checked at import, and tested on its own
(test/ros/dds/test_fastpath.py); nothing else in vispeak_ros touches it.

The topic, writer and reader are ordinary binding objects created with the matching IdlStruct type, so
discovery, QoS and the type information Cyclone announces are the binding's own.
"""

from __future__ import annotations

from typing import Any

try:
    from cyclonedds._clayer import ddspy_take, ddspy_write, ddspy_write_ts
    from cyclonedds.core import DDSException, InstanceState, SampleState, ViewState
except ImportError as exc:  # pragma: no cover - depends on the installed binding
    raise ImportError(
        f"vispeak_ros.ros.adapters.dds_fastpath: the cyclonedds binding lacks its serialized-sample layer ({exc}); "
        "install cyclonedds>=0.10.5 (tested with 11.0.1)"
    ) from exc

ANY_SAMPLE = SampleState.Any | ViewState.Any | InstanceState.Any
NOT_READ = SampleState.NotRead | ViewState.Any | InstanceState.Any
ENCAPSULATION_HEADERS = (b"\x00\x00", b"\x00\x01")  # CDR big endian, CDR little endian (XCDR1)


def pad_cdr(cdr: bytes) -> bytes:
    """A CDR sample padded to 4 bytes, as DDS sends it; the padding count goes in the last two bits of the
    encapsulation options (XCDR). rosbag2 files written by rosbags (and some other writers) store unpadded CDR."""
    pad = -len(cdr) % 4
    if not pad or len(cdr) < 4:
        return cdr
    return cdr[:3] + bytes([(cdr[3] & 0xFC) | pad]) + cdr[4:] + b"\0" * pad


class CdrWriter:
    """Writes already-serialised CDR samples (encapsulation header included) through a binding DataWriter."""

    __slots__ = ("_ref", "writer")

    def __init__(self, writer: Any) -> None:
        self.writer = writer  # keeps the binding object, and so the C entity, alive
        self._ref = writer._ref

    def write(self, cdr: bytes, timestamp_ns: int | None = None) -> None:
        """Write one sample. `cdr` must start with an XCDR1 encapsulation header and be padded to 4 bytes."""
        if len(cdr) < 4 or len(cdr) % 4 or cdr[:2] not in ENCAPSULATION_HEADERS:
            raise ValueError(
                f"CdrWriter on {self.writer.topic.name}: sample of {len(cdr)} bytes is not XCDR1 CDR padded to 4 "
                f"bytes (header {bytes(cdr[:4]).hex()})"
            )
        ret = ddspy_write(self._ref, cdr) if timestamp_ns is None else ddspy_write_ts(self._ref, cdr, timestamp_ns)
        if ret < 0:
            raise DDSException(ret, f"writing {len(cdr)} CDR bytes on {self.writer.topic.name}")


class CdrReader:
    """Takes serialised CDR samples from a binding DataReader, skipping invalid (dispose/unregister) samples."""

    __slots__ = ("_ref", "reader")

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self._ref = reader._ref

    def take(self, max_samples: int = 64) -> list[tuple[bytes, Any]]:
        """Up to `max_samples` (cdr_bytes, SampleInfo) pairs, oldest first; [] when none is waiting."""
        ret = ddspy_take(self._ref, ANY_SAMPLE, max_samples)
        if isinstance(ret, int):
            raise DDSException(ret, f"taking samples on {self.reader.topic.name}")
        return [(data, info) for data, info in ret if info.valid_data]
