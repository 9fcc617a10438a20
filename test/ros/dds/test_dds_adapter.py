"""The Cyclone DDS adapter as a graph port: environment, isolation, parameters, timers, sim time, latching."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from vispeak_ros.ros import isolation, port
from vispeak_ros.ros.adapters.dds_adapter import DdsNode, discovery_config
from vispeak_ros.ros.isolation import loopback_config_xml


def test_environment_mapping_follows_ros2() -> None:
    assert discovery_config({}) == (0, None, "SUBNET")
    assert discovery_config({"ROS_DOMAIN_ID": "42"})[0] == 42
    assert discovery_config({"ROS_LOCALHOST_ONLY": "1"}) == (0, loopback_config_xml(), "LOCALHOST")
    assert discovery_config({"ROS_AUTOMATIC_DISCOVERY_RANGE": "off"}) == (0, loopback_config_xml(peers=False), "OFF")
    # the newer variable wins over the Humble one
    assert discovery_config({"ROS_LOCALHOST_ONLY": "1", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"})[2] == "SUBNET"
    user = "<CycloneDDS><Domain><Tracing><Verbosity>warning</Verbosity></Tracing></Domain></CycloneDDS>"
    assert discovery_config({"CYCLONEDDS_URI": user}) == (0, user, "SUBNET")
    assert discovery_config({"CYCLONEDDS_URI": user, "ROS_LOCALHOST_ONLY": "1"})[1] == f"{loopback_config_xml()},{user}"
    own = loopback_config_xml()
    assert discovery_config({"CYCLONEDDS_URI": own, "ROS_LOCALHOST_ONLY": "1"})[1] == own  # picks interfaces: wins
    with pytest.raises(ValueError, match="ROS_DOMAIN_ID=233 is outside 0-232"):
        discovery_config({"ROS_DOMAIN_ID": "233"})
    with pytest.raises(ValueError, match="ROS_DOMAIN_ID='x' is not an integer"):
        discovery_config({"ROS_DOMAIN_ID": "x"})
    with pytest.raises(ValueError, match="ROS_AUTOMATIC_DISCOVERY_RANGE='LAN' is not one of"):
        discovery_config({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LAN"})


def test_isolation_overrides_whatever_the_caller_set() -> None:
    caller = {
        "ROS_DOMAIN_ID": "0",
        "ROS_LOCALHOST_ONLY": "0",
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET",
        "ROS_STATIC_PEERS": "192.168.1.7",
        "CYCLONEDDS_URI": "file:///etc/robot/cyclone.xml",
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        "HOME": "/root",
    }
    env = isolation.isolated_env(caller)
    assert env["HOME"] == "/root" and "ROS_STATIC_PEERS" not in env and "RMW_IMPLEMENTATION" not in env
    assert 1 <= int(env["ROS_DOMAIN_ID"]) <= 232
    assert env["CYCLONEDDS_URI"] == loopback_config_xml()
    domain, config, discovery = discovery_config(env)
    assert (domain, config, discovery) == (int(env["ROS_DOMAIN_ID"]), loopback_config_xml(), "LOCALHOST")
    xml = loopback_config_xml()
    for fragment in ('<NetworkInterface name="lo"/>', "<AllowMulticast>false</AllowMulticast>", 'address="127.0.0.1"'):
        assert fragment in xml


def test_domain_ids_in_use_on_this_host_are_skipped() -> None:
    class Fixed:
        def __init__(self, values: list[int]) -> None:
            self.values = values

        def randint(self, _low: int, _high: int) -> int:
            return self.values.pop(0)

    busy = isolation.pick_domain_id()
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", isolation.PORT_BASE + isolation.DOMAIN_GAIN * busy + isolation.UNICAST_DISCOVERY_OFFSET))
    try:
        assert isolation.domain_in_use(busy)
        free = next(d for d in range(1, 233) if d != busy and not isolation.domain_in_use(d))
        assert isolation.pick_domain_id(Fixed([busy, free])) == free
        with pytest.raises(RuntimeError, match="no free DDS domain id"):
            isolation.pick_domain_id(Fixed([busy] * 3), attempts=3)
    finally:
        holder.close()


def test_nodes_in_other_domains_do_not_meet(make_node, dds_env) -> None:
    other = dict(dds_env, ROS_DOMAIN_ID=str(isolation.pick_domain_id()))
    here = make_node("here")
    there = make_node("there", env=other)
    publisher = here.create_publisher("std_msgs/msg/String", "/chatter", port.DEFAULT)
    same = make_node("same_domain").create_subscription("std_msgs/msg/String", "/chatter", print, port.DEFAULT)
    elsewhere = there.create_subscription("std_msgs/msg/String", "/chatter", print, port.DEFAULT)
    assert here.spin_until(lambda: same.matched_publications() == 1, 5.0)
    time.sleep(0.5)
    assert elsewhere.matched_publications() == 0 and publisher.matched_subscriptions() == 1


def test_parameters_from_overrides_and_params_file(make_node, tmp_path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    threshold: 0.5\n    model: {name: tiny}\n"
        "vispeak:\n  ros__parameters:\n    threshold: 0.7\n    topics: [a, b]\n"
    )
    node = make_node("vispeak", params_file=str(params), parameter_overrides={"segment_s": 2})
    assert node.declare_parameter("threshold", 0.35) == 0.7
    assert node.declare_parameter("model.name", "base") == "tiny"
    assert node.declare_parameter("topics", ["x"]) == ["a", "b"]
    assert node.declare_parameter("segment_s", 1.0) == 2.0
    assert node.declare_parameter("undeclared_elsewhere", True) is True
    assert node.get_parameter("use_sim_time") is False
    with pytest.raises(KeyError, match="parameter 'nope' is not declared"):
        node.get_parameter("nope")
    with pytest.raises(RuntimeError, match="'threshold' is already declared"):
        node.declare_parameter("threshold", 0.1)


def test_run_time_parameter_changes_are_checked_then_offered_to_callbacks(make_node) -> None:
    node = make_node("vispeak")
    node.declare_parameter("threshold", 0.35, port.ParameterDescriptor(min_value=0.0, max_value=3.0))
    node.declare_parameter("checkpoint", "", port.ParameterDescriptor(read_only=True))
    seen: list[dict] = []

    def callback(changes: dict) -> tuple[bool, str]:
        seen.append(changes)
        return (changes.get("threshold", 0.0) != 2.5, "2.5 is refused by the node")

    node.add_parameter_callback(callback)
    assert node.set_parameters({"threshold": 1}) == (True, "")
    assert node.get_parameter("threshold") == 1.0 and seen == [{"threshold": 1.0}]
    assert node.set_parameters({"threshold": 2.5}) == (False, "2.5 is refused by the node")
    assert node.set_parameters({"threshold": 9.0})[1] == "parameter 'threshold': 9.0 is above its maximum 3.0"
    assert node.set_parameters({"checkpoint": "/x"}) == (False, "parameter 'checkpoint' is read-only")
    assert node.set_parameters({"nope": 1}) == (False, "parameter 'nope' is not declared")
    assert node.get_parameter("threshold") == 1.0


def test_actions_need_rclpy(make_node) -> None:
    with pytest.raises(NotImplementedError, match="need the rclpy adapter; over plain DDS use topics"):
        make_node("vispeak").create_action_client("audio_common_msgs/action/TTS", "say")


def test_new_message_defaults_and_byte_fields(make_node) -> None:
    node = make_node("messages")
    msg = node.new_message("sensor_msgs/msg/CompressedImage", format="jpeg", data=b"\xff\xd8\xff")
    assert msg.header.frame_id == "" and msg.header.stamp.sec == 0
    assert msg.data.dtype == np.uint8 and bytes(msg.data) == b"\xff\xd8\xff"
    info = node.new_message("sensor_msgs/msg/CameraInfo")
    assert info.k.shape == (9,) and info.d.size == 0
    with pytest.raises(TypeError, match="sensor_msgs/msg/Image has no field\\(s\\) colour; fields: header"):
        node.new_message("sensor_msgs/msg/Image", colour="red")
    with pytest.raises(KeyError, match="'nav_msgs/msg/Nope' is not in the type store"):
        node.new_message("nav_msgs/msg/Nope")


def test_timers_fire_on_the_spin_thread_and_cancel(make_node) -> None:
    node = make_node("timers")
    ticks: list[float] = []
    timer = node.create_timer(0.05, lambda: ticks.append(time.monotonic()))
    assert node.spin_until(lambda: len(ticks) >= 4, 3.0)
    periods = np.diff(ticks)
    assert 0.03 < float(np.median(periods)) < 0.09
    timer.cancel()
    count = len(ticks)
    node.spin_until(lambda: False, 0.2)
    assert len(ticks) == count
    with pytest.raises(ValueError, match="timer period must be positive"):
        node.create_timer(0, lambda: None)


def test_sim_time_follows_clock(make_node) -> None:
    node = make_node("sim", parameter_overrides={"use_sim_time": True})
    clock = make_node("clock_source").create_publisher(port.CLOCK_TYPE, port.CLOCK_TOPIC, port.CLOCK)
    ticks: list[int] = []
    node.create_timer(1.0, lambda: ticks.append(node.now_ns()))
    assert node.now_ns() == 0  # no /clock yet, as rclpy
    assert node.spin_until(lambda: clock.matched_subscriptions() == 1, 5.0)
    for sec in range(100, 104):
        clock.publish(
            clock.node.new_message(
                port.CLOCK_TYPE, clock=clock.node.new_message("builtin_interfaces/msg/Time", sec=sec, nanosec=500)
            )
        )
        node.spin_until(lambda s=sec: node.now_ns() == s * 1_000_000_000 + 500, 2.0)
    assert node.now_ns() == 103_000_000_500
    assert len(ticks) >= 2 and all(t >= 101_000_000_000 for t in ticks)  # sim timers run on /clock, not the wall


def test_sim_timers_follow_the_clock_back_when_it_jumps_back(make_node) -> None:
    """A replay restarting resets /clock; as rcl's timers, ours then count from the new time instead of waiting
    until the clock is back where it was."""
    node = make_node("sim", parameter_overrides={"use_sim_time": True})
    clock = make_node("clock_source").create_publisher(port.CLOCK_TYPE, port.CLOCK_TOPIC, port.CLOCK)
    ticks: list[int] = []
    node.create_timer(1.0, lambda: ticks.append(node.now_ns()))
    assert node.spin_until(lambda: clock.matched_subscriptions() == 1, 5.0)

    def tick_to(sec: int) -> None:
        stamp = clock.node.new_message("builtin_interfaces/msg/Time", sec=sec, nanosec=0)
        clock.publish(clock.node.new_message(port.CLOCK_TYPE, clock=stamp))
        node.spin_until(lambda: node.now_ns() == sec * 1_000_000_000, 2.0)
        node.spin_once(0.01)

    for sec in range(1000, 1004):
        tick_to(sec)
    fired_before = len(ticks)
    for sec in range(10, 14):  # 990 s back
        tick_to(sec)
    assert fired_before >= 2 and any(t < 20_000_000_000 for t in ticks[fired_before:]), ticks


def test_latched_topic_reaches_late_subscribers(make_node) -> None:
    talker = make_node("talker")
    state = talker.create_publisher("std_msgs/msg/String", "/vispeak/state", port.TRANSIENT_LOCAL_LATCHED)
    state.publish(talker.new_message("std_msgs/msg/String", data="idle"))
    state.publish(talker.new_message("std_msgs/msg/String", data="listening"))
    late = make_node("late")
    got: list[str] = []
    late.create_subscription(
        "std_msgs/msg/String", "/vispeak/state", lambda m: got.append(m.data), port.TRANSIENT_LOCAL_LATCHED
    )
    assert late.spin_until(lambda: got == ["listening"], 5.0), got


def test_shutdown_from_a_callback_and_twice(make_node) -> None:
    node = make_node("stopper")
    node.create_timer(0.01, node.shutdown)
    node.spin()  # returns because the timer shut the node down
    node.shutdown()
    assert node.spin_once(0.01) == 0


def test_domain_settings_must_agree_within_a_process(make_node, dds_env) -> None:
    make_node("first")
    conflicting = dict(dds_env, CYCLONEDDS_URI="", ROS_AUTOMATIC_DISCOVERY_RANGE="OFF")
    with pytest.raises(RuntimeError, match=f"DDS domain {dds_env['ROS_DOMAIN_ID']} already runs in this process"):
        DdsNode("second", env=conflicting)


def test_dds_node_offers_every_graph_port_member() -> None:
    members = [
        name
        for name in vars(port.GraphPort)
        if not name.startswith("_") and name not in ("_is_protocol", "_is_runtime_protocol")
    ]
    assert {"create_publisher", "create_subscription", "create_service", "create_timer", "now_ns"} <= set(members)
    missing = [name for name in members if not hasattr(DdsNode, name)]
    assert missing == []
