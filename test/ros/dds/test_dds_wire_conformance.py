"""Wire conformance: for every type vispeak_ros publishes or subscribes, the DDS topic name, type name, QoS and CDR
bytes are ROS 2's (rmw_cyclonedds' mapping; bytes compared with rosbags' serialisation, which is what rosbag2
stores from a ROS 2 graph)."""

from __future__ import annotations

import random
import time

import pytest
from dds_samples import random_message, to_idl

from vispeak_ros.ros import port
from vispeak_ros.ros.adapters.dds_adapter import build_typestore, dds_qos
from vispeak_ros.ros.adapters.dds_types import (
    REQUEST_HEADER,
    DdsTypes,
    dds_topic_name,
    dds_type_name,
    pad4,
    register_service,
    service_topic_names,
)

# Everything the node and its tools put on or take off the graph.
COMMON = [
    "sensor_msgs/msg/Image",
    "sensor_msgs/msg/CompressedImage",
    "sensor_msgs/msg/CameraInfo",
    "std_msgs/msg/String",
    "std_msgs/msg/Bool",
    "std_msgs/msg/Empty",
    "std_msgs/msg/Header",
    "geometry_msgs/msg/Twist",
    "rosgraph_msgs/msg/Clock",
    "diagnostic_msgs/msg/DiagnosticArray",
    "vispeak_ros/msg/Feedback",
    "vispeak_ros/msg/Event",
    "vispeak_ros/msg/Informative",
]
AUDIO = {
    "ros_drivers": [
        "audio_common_msgs/msg/AudioData",
        "audio_common_msgs/msg/AudioDataStamped",
        "audio_common_msgs/msg/AudioInfo",
    ],
    "mgonzs13": [
        "audio_common_msgs/msg/AudioData",
        "audio_common_msgs/msg/AudioInfo",
        "audio_common_msgs/msg/Audio",
        "audio_common_msgs/msg/AudioStamped",
    ],
}
SERVICES = ["std_srvs/srv/Trigger", "std_srvs/srv/Empty", "std_srvs/srv/SetBool"]
CASES = [(None, t) for t in COMMON] + [(flavour, t) for flavour, names in AUDIO.items() for t in names]
SEEDS = range(6)

_STORES: dict[str | None, DdsTypes] = {}


def types_for(flavour: str | None) -> DdsTypes:
    if flavour not in _STORES:
        _STORES[flavour] = DdsTypes(build_typestore(audio_flavour=flavour))
    return _STORES[flavour]


def test_name_mapping_examples() -> None:
    assert dds_topic_name("/camera/image_raw") == "rt/camera/image_raw"
    assert dds_type_name("sensor_msgs/msg/Image") == "sensor_msgs::msg::dds_::Image_"
    assert dds_type_name("std_srvs/srv/Trigger_Request") == "std_srvs::srv::dds_::Trigger_Request_"
    assert service_topic_names("/vispeak/reset") == ("rq/vispeak/resetRequest", "rr/vispeak/resetReply")
    with pytest.raises(ValueError, match="fully qualified"):
        dds_topic_name("camera/image")
    with pytest.raises(ValueError, match="not a ROS 2 interface name"):
        dds_type_name("sensor_msgs/Image")


@pytest.mark.parametrize(("flavour", "ros_type"), CASES, ids=[f"{f or 'std'}:{t}" for f, t in CASES])
def test_cdr_bytes_equal_rosbags_both_ways(flavour: str | None, ros_type: str) -> None:
    types = types_for(flavour)
    cls = types.idl_class(ros_type)
    pkg, kind, name = ros_type.split("/")
    assert cls.__idl_typename__ == f"{pkg}::{kind}::dds_::{name}_"
    for seed in SEEDS:
        msg = random_message(types, ros_type, random.Random(seed))
        ros_bytes = types.serialize(msg, ros_type)
        typed = to_idl(types, ros_type, msg)
        assert ros_bytes[:4] == b"\x00\x01\x00\x00"  # XCDR1 little endian, no options
        assert pad4(typed.serialize()) == ros_bytes, f"{ros_type} seed {seed}"
        # and back: each side reads the other's bytes into the same message
        assert pad4(cls.deserialize(ros_bytes).serialize()) == ros_bytes
        assert types.serialize(types.deserialize(typed.serialize(), ros_type), ros_type) == ros_bytes


@pytest.mark.parametrize("srv_type", SERVICES)
def test_service_samples_carry_rmw_cyclonedds_request_header(srv_type: str) -> None:
    types = types_for(None)
    request, response = register_service(types.typestore, srv_type)
    for ros_type in (request, response):
        assert types.service_idl_class(ros_type).__idl_typename__ == dds_type_name(ros_type)
        for seed in SEEDS:
            msg = random_message(types, ros_type, random.Random(seed))
            sample = types.serialize_service(msg, ros_type, 0x0123456789ABCDEF, 42)
            body = types.serialize(msg, ros_type)
            # encapsulation | uint64 guid | int64 seq | body (alignment unchanged: the header is 16 bytes)
            assert sample[:4] == body[:4]
            assert REQUEST_HEADER.unpack_from(sample, 4) == (0x0123456789ABCDEF, 42)
            assert sample[20:] == body[4:]
            assert pad4(to_idl(types, ros_type, msg, service=True).serialize()) == sample
            guid, seq, back = types.deserialize_service(sample, ros_type)
            assert (guid, seq) == (0x0123456789ABCDEF, 42)
            assert types.serialize(back, ros_type) == body


def test_empty_service_halves_send_one_byte_like_rosidl() -> None:
    types = types_for(None)
    request, _ = register_service(types.typestore, "std_srvs/srv/Trigger")
    assert types.serialize(types.new_message(request), request) == b"\x00\x01\x00\x00\x00\x00\x00\x00"


def _expected_policies(profile: port.QosProfile) -> dict[str, object]:
    """rmw_cyclonedds' create_readwrite_qos, written out policy by policy from its source."""
    from cyclonedds.core import Policy
    from cyclonedds.internal import dds_infinity

    history = Policy.History.KeepLast(profile.depth)
    expected: dict[str, object] = {
        "Reliability": Policy.Reliability.Reliable(max_blocking_time=dds_infinity)
        if profile.reliability is port.Reliability.RELIABLE
        else Policy.Reliability.BestEffort,
        "History": history,
        "Durability": Policy.Durability.TransientLocal
        if profile.durability is port.Durability.TRANSIENT_LOCAL
        else Policy.Durability.Volatile,
        "Liveliness": Policy.Liveliness.Automatic(lease_duration=dds_infinity),
    }
    if profile.durability is port.Durability.TRANSIENT_LOCAL:
        expected["DurabilityService"] = Policy.DurabilityService(
            cleanup_delay=0, history=history, max_samples=-1, max_instances=-1, max_samples_per_instance=-1
        )
    return expected


def test_ros_profiles_are_rmw_qos_profiles() -> None:
    """rmw/qos_profiles.h values, and rclpy's /clock subscription (depth 1, best effort)."""
    keep_last = port.History.KEEP_LAST
    assert (port.SENSOR_DATA.reliability, port.SENSOR_DATA.durability, port.SENSOR_DATA.history) == (
        port.Reliability.BEST_EFFORT,
        port.Durability.VOLATILE,
        keep_last,
    )
    assert port.SENSOR_DATA.depth == 5
    assert port.QosProfile(port.Reliability.RELIABLE, port.Durability.VOLATILE, keep_last, 10) == port.DEFAULT
    assert port.SERVICES_DEFAULT == port.DEFAULT
    assert port.PARAMETER_EVENTS.depth == 1000
    assert (
        port.QosProfile(port.Reliability.RELIABLE, port.Durability.TRANSIENT_LOCAL, keep_last, 1)
        == port.TRANSIENT_LOCAL_LATCHED
    )
    assert port.QosProfile(port.Reliability.BEST_EFFORT, port.Durability.VOLATILE, keep_last, 1) == port.CLOCK


@pytest.mark.parametrize("profile_name", ["sensor_data", "default", "transient_local", "clock"])
def test_endpoint_qos_on_the_wire_is_rmw_cyclonedds_mapping(make_node, profile_name: str) -> None:
    from cyclonedds.core import Policy

    profile = port.qos_profile(profile_name)
    node = make_node("qos_probe")
    publisher = node.create_publisher("std_msgs/msg/String", "/qos_probe", profile)
    subscription = node.create_subscription("std_msgs/msg/String", "/qos_probe", lambda _m: None, profile)
    expected = _expected_policies(profile)
    for entity in (publisher.writer, subscription.reader):
        qos = entity.get_qos()
        for scope, policy in expected.items():
            if scope == "DurabilityService" and entity is subscription.reader:
                continue  # a writer-only policy: Cyclone keeps it off readers
            assert qos[getattr(Policy, scope)] == policy, f"{profile_name} {scope} on {type(entity).__name__}"
    assert publisher.writer.get_qos()[Policy.WriterDataLifecycle] == Policy.WriterDataLifecycle(autodispose=False)
    # what a remote peer sees through discovery: the matched endpoint's QoS
    assert node.spin_until(lambda: subscription.matched_publications() == 1, 5.0)
    remote = subscription.reader.get_matched_publication_data(subscription.reader.get_matched_publications()[0])
    assert remote.topic_name == "rt/qos_probe"
    assert remote.type_name == "std_msgs::msg::dds_::String_"
    for scope, policy in expected.items():
        assert remote.qos[getattr(Policy, scope)] == policy


def test_topic_names_resolve_like_rcl(make_node) -> None:
    node = make_node("vispeak", namespace="/robot")
    feedback = node.create_publisher("vispeak_ros/msg/Feedback", "~/feedback", port.DEFAULT)
    relative = node.create_publisher("std_msgs/msg/Bool", "stop_lock", port.DEFAULT)
    absolute = node.create_subscription("sensor_msgs/msg/Image", "/camera/image_raw", lambda _m: None, port.SENSOR_DATA)
    service = node.create_service("std_srvs/srv/Trigger", "~/reset", lambda _q, r: r)
    assert feedback.writer.topic.name == "rt/robot/vispeak/feedback"
    assert feedback.writer.topic.typename == "vispeak_ros::msg::dds_::Feedback_"
    assert relative.writer.topic.name == "rt/robot/stop_lock"
    assert absolute.reader.topic.name == "rt/camera/image_raw"
    assert service.reader.topic.name == "rq/robot/vispeak/resetRequest"
    assert service.reader.topic.typename == "std_srvs::srv::dds_::Trigger_Request_"
    assert service.writer.topic.name == "rr/robot/vispeak/resetReply"
    assert service.writer.topic.typename == "std_srvs::srv::dds_::Trigger_Response_"
    assert service.alias is not None and service.alias.reader.topic.name == "rt/robot/vispeak/reset"


@pytest.mark.parametrize("ros_type", ["sensor_msgs/msg/Image", "vispeak_ros/msg/Feedback", "std_msgs/msg/Empty"])
def test_fast_path_and_typed_binding_interoperate_on_the_wire(make_node, ros_type: str) -> None:
    """Our writer's samples read by the binding's typed reader, and the typed writer's samples read by ours, are
    the rosbags bytes: a peer that (de)serialises with its own type support sees ROS 2 CDR."""
    from cyclonedds.pub import DataWriter
    from cyclonedds.sub import DataReader

    node = make_node("interop")
    types = node.types
    msg = random_message(types, ros_type, random.Random(7), max_len=40)
    expected = types.serialize(msg, ros_type)
    publisher = node.create_publisher(ros_type, "/interop", port.DEFAULT)
    received: list[bytes] = []
    subscription = node.create_subscription(
        ros_type, "/interop", lambda sample: received.append(sample[0]), port.DEFAULT, raw=True
    )
    typed_topic = node.topic(dds_topic_name("/interop"), types.idl_class(ros_type))
    typed_reader = DataReader(node.participant, typed_topic, dds_qos(port.DEFAULT))
    typed_writer = DataWriter(node.participant, typed_topic, dds_qos(port.DEFAULT))
    assert node.spin_until(lambda: subscription.matched_publications() == 2, 5.0)

    publisher.publish(msg)
    deadline = time.monotonic() + 5.0
    typed: list = []
    while not typed and time.monotonic() < deadline:
        typed = typed_reader.take()
        time.sleep(0.01)
    assert typed, "typed reader got nothing from the fast-path writer"
    assert pad4(typed[0].serialize()) == expected

    received.clear()
    typed_writer.write(to_idl(types, ros_type, msg))
    assert node.spin_until(lambda: len(received) >= 2, 5.0)  # the fast-path sample and the typed one
    assert received == [expected, expected]
