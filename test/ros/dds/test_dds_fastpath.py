"""The wrapped fast path (dds_fastpath): pre-serialised CDR written and taken through the binding's lower layer."""

from __future__ import annotations

import time

import numpy as np
import pytest
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic

from vispeak_ros.ros import port
from vispeak_ros.ros.adapters.dds_adapter import build_typestore, dds_qos
from vispeak_ros.ros.adapters.dds_fastpath import CdrReader, CdrWriter
from vispeak_ros.ros.adapters.dds_types import DdsTypes

IMAGE = "sensor_msgs/msg/Image"


@pytest.fixture
def endpoints(make_node):
    """A fast-path writer and reader on one Image topic, matched, keep-all reliable (no sample may be lost)."""
    node = make_node("fastpath")
    keep_all = port.QosProfile(history=port.History.KEEP_ALL, depth=1)
    topic = node.topic("rt/fastpath/image", node.types.idl_class(IMAGE))
    writer = DataWriter(node.participant, topic, dds_qos(keep_all))
    reader = DataReader(node.participant, topic, dds_qos(keep_all))
    deadline = time.monotonic() + 5
    while not writer.get_matched_subscriptions() and time.monotonic() < deadline:
        time.sleep(0.01)
    return node, CdrWriter(writer), CdrReader(reader)


def image(types: DdsTypes, index: int, width: int = 640, height: int = 480) -> object:
    data = np.random.default_rng(index).integers(0, 256, width * height * 3, dtype=np.uint8)
    return types.new_message(IMAGE, height=height, width=width, encoding="rgb8", step=width * 3, data=data)


def take_all(reader: CdrReader, count: int, timeout: float = 10.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        batch = reader.take(64)
        got.extend(batch)
        if not batch:
            time.sleep(0.002)
    return got


def test_bytes_in_equal_bytes_out(endpoints) -> None:
    node, writer, reader = endpoints
    assert reader.take() == []  # nothing waiting: an empty list, not an error
    sizes = [(1, 1), (3, 5), (641, 3), (640, 480)]  # odd sizes exercise the 4-byte padding
    sent = [node.types.serialize(image(node.types, i, w, h), IMAGE) for i, (w, h) in enumerate(sizes)]
    for cdr in sent:
        writer.write(cdr)
    got = take_all(reader, len(sent))
    assert [data for data, _ in got] == sent
    assert all(info.valid_data for _, info in got)
    back = node.types.deserialize(got[-1][0], IMAGE)
    assert (back.width, back.height, back.encoding) == (640, 480, "rgb8")


def test_source_timestamp_is_passed_through(endpoints) -> None:
    node, writer, reader = endpoints
    writer.write(node.types.serialize(image(node.types, 0, 2, 2), IMAGE), timestamp_ns=1_700_000_000_123_456_789)
    ((_, info),) = take_all(reader, 1)
    assert info.source_timestamp == 1_700_000_000_123_456_789


def test_take_respects_max_samples_and_order(endpoints) -> None:
    node, writer, reader = endpoints
    sent = [node.types.serialize(image(node.types, i, 4, 4), IMAGE) for i in range(10)]
    for cdr in sent:
        writer.write(cdr)
    time.sleep(0.2)
    first = reader.take(3)
    assert [data for data, _ in first] == sent[:3]
    assert [data for data, _ in take_all(reader, 7)] == sent[3:]


def test_burst_of_full_frames_is_delivered_complete(endpoints) -> None:
    """100 back-to-back 640x480 rgb8 frames (92 MB) with keep-all reliable QoS: all arrive, in order."""
    node, writer, reader = endpoints
    frames = [node.types.serialize(image(node.types, i % 4), IMAGE) for i in range(4)]
    for i in range(100):
        writer.write(frames[i % 4])
    got = take_all(reader, 100, timeout=30)
    assert len(got) == 100
    assert all(data == frames[i % 4] for i, (data, _) in enumerate(got))


def test_rejects_bytes_that_are_not_padded_cdr(endpoints) -> None:
    _, writer, _ = endpoints
    with pytest.raises(ValueError, match="rt/fastpath/image: sample of 7 bytes is not XCDR1 CDR padded"):
        writer.write(b"\x00\x01\x00\x00abc")
    with pytest.raises(ValueError, match="header 12345678"):
        writer.write(bytes.fromhex("12345678") + b"\0" * 4)


def test_fast_path_beats_the_typed_python_path(dds_env) -> None:
    """The reason the fast path exists: rosbags + raw write/take versus the binding's own (de)serialisation."""
    types = DdsTypes(build_typestore())
    participant = DomainParticipant(int(dds_env["ROS_DOMAIN_ID"]))
    try:
        topic = Topic(participant, "rt/fastpath/compare", types.idl_class(IMAGE))
        writer, reader = DataWriter(participant, topic), DataReader(participant, topic)
        fast_writer, fast_reader = CdrWriter(writer), CdrReader(reader)
        msg = image(types, 1)
        typed_msg = types.idl_class(IMAGE).deserialize(types.serialize(msg, IMAGE))
        time.sleep(0.3)

        def fast() -> None:
            fast_writer.write(types.serialize(msg, IMAGE))
            types.deserialize(take_all(fast_reader, 1)[0][0], IMAGE)

        def typed() -> None:
            writer.write(typed_msg)
            deadline = time.monotonic() + 5
            while not reader.take() and time.monotonic() < deadline:
                time.sleep(0.001)

        def best_of(run, n: int = 5) -> float:
            times = []
            for _ in range(n):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            return min(times)

        fast_s, typed_s = best_of(fast), best_of(typed)
        assert fast_s * 3 < typed_s, f"fast path {fast_s * 1e3:.1f} ms vs typed {typed_s * 1e3:.1f} ms"
    finally:
        participant.__del__()
