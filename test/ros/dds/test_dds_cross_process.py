"""Across processes over real DDS (loopback, isolated domain): the node's input streams arrive unchanged, a QoS
mismatch is reported as ROS 2 reports it, and services work between our own processes."""

from __future__ import annotations

import random

from dds_procs import finish, start_peer

from vispeak_ros.ros import port

STREAMS = "image,compressed,audio_ros_drivers,audio_ros_drivers_raw,audio_mgonzs13"


def test_streams_arrive_unchanged_between_processes(dds_env: dict[str, str]) -> None:
    seed = random.Random().randrange(1 << 30)
    subscriber = start_peer(dds_env, "subscribe", "--streams", STREAMS, "--count", "3", "--timeout", "20")
    assert subscriber.stdout.readline().strip() == "ready"
    publisher = start_peer(dds_env, "publish", "--streams", STREAMS, "--count", "3", "--seed", str(seed))
    sent, _ = finish(publisher)
    received, _ = finish(subscriber)
    assert all(count == 1 for count in sent["matched"].values()), sent["matched"]
    for stream in STREAMS.split(","):
        assert len(sent["sent"][stream]) == 3
        assert received["received"][stream] == sent["sent"][stream], stream
    assert received["summary"]["image"] == [[480, 640, "rgb8", 640 * 480 * 3]] * 3
    assert sent["qos_events"] == [] and received["qos_events"] == []


def test_qos_mismatch_is_reported_as_ros2_reports_it(dds_env: dict[str, str]) -> None:
    """Best-effort publisher, reliable subscriber: no messages, and rclpy's warning, word for word."""
    subscriber = start_peer(
        dds_env, "subscribe", "--streams", "image", "--qos", "default", "--timeout", "15", "--until-qos-event"
    )
    assert subscriber.stdout.readline().strip() == "ready"
    publisher = start_peer(
        dds_env, "publish", "--streams", "image", "--qos", "sensor_data", "--count", "3", "--match-timeout", "2"
    )
    sent, _ = finish(publisher)
    received, stderr = finish(subscriber)
    expected = port.incompatible_qos_message("/camera/image_raw", "RELIABILITY")
    assert expected == (
        "New publisher discovered on topic '/camera/image_raw', offering incompatible QoS. "
        "No messages will be received from it. Last incompatible policy: RELIABILITY"
    )
    assert received["qos_events"] == [expected]
    warn_lines = [line for line in stderr.splitlines() if expected in line]
    assert len(warn_lines) == 1 and warn_lines[0].startswith("[WARN] [") and "] [peer_sub_std]: " in warn_lines[0]
    assert received["received"]["image"] == []
    assert sent["matched"] == {"image": 0}
    offered = port.incompatible_qos_message("/camera/image_raw", "RELIABILITY", subscription_side=False)
    assert sent["qos_events"] == [offered]


def test_trigger_service_between_processes(dds_env: dict[str, str], make_node) -> None:
    server = start_peer(dds_env, "serve", "--count", "3", "--timeout", "15")
    assert server.stdout.readline().strip() == "ready"
    node = make_node("client")
    client = node.create_client("std_srvs/srv/Trigger", "/peer/reset")
    assert client.wait_for_service(10.0)
    replies = [client.call(timeout_s=5.0) for _ in range(2)]
    assert [(r.success, r.message) for r in replies] == [(True, "reset #1"), (True, "reset #2")]
    # DDS-only users: the same service as a plain std_msgs/Empty topic
    trigger = node.create_publisher("std_msgs/msg/Empty", "/peer/reset", port.DEFAULT)
    assert node.spin_until(lambda: trigger.matched_subscriptions() == 1, 5.0)
    trigger.publish(node.new_message("std_msgs/msg/Empty"))
    report, stderr = finish(server)
    assert report == {"calls": 3}
    assert "/peer/reset called through its std_msgs/Empty topic: success=True, message='reset #3'" in stderr
