"""The graph port's own pieces: light import, names, parameters, logger, QoS helpers."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from vispeak_ros.ros import port


def test_importing_the_port_imports_no_middleware_and_no_torch() -> None:
    code = (
        "import sys, vispeak_ros.ros.port, vispeak_ros.ros.isolation, vispeak_ros.ros.adapters;"
        "print(sorted(m for m in ('cyclonedds', 'rclpy', 'torch', 'rosbags') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_named_profiles_and_depth() -> None:
    assert port.qos_profile("sensor_data") is port.SENSOR_DATA
    assert port.SENSOR_DATA.with_depth(1).depth == 1
    assert port.SENSOR_DATA.with_depth(1).reliability is port.Reliability.BEST_EFFORT
    with pytest.raises(ValueError, match="unknown QoS profile 'fast'; known: clock, default"):
        port.qos_profile("fast")
    with pytest.raises(ValueError, match="keep_last needs depth >= 1"):
        port.QosProfile(depth=0)


def test_publisher_side_incompatible_qos_wording() -> None:
    assert port.incompatible_qos_message("/cmd_vel", "DURABILITY", subscription_side=False) == (
        "New subscription discovered on topic '/cmd_vel', requesting incompatible QoS. "
        "No messages will be sent to it. Last incompatible policy: DURABILITY"
    )


@pytest.mark.parametrize(
    ("name", "namespace", "expected"),
    [
        ("image", "/", "/image"),
        ("image", "/robot", "/robot/image"),
        ("/image", "/robot", "/image"),
        ("~/feedback", "/robot", "/robot/vispeak/feedback"),
        ("~", "/", "/vispeak"),
        ("a/b", "robot/", "/robot/a/b"),
    ],
)
def test_names_resolve_like_rcl(name: str, namespace: str, expected: str) -> None:
    assert port.resolve_name(name, "vispeak", namespace) == expected


def test_invalid_names_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid ROS name 'a//b'"):
        port.resolve_name("a//b", "vispeak")
    with pytest.raises(ValueError, match="in node 'vispeak'"):
        port.resolve_name("/a b", "vispeak")


def test_parameter_checks() -> None:
    assert port.check_parameter("rate", 2, 1.5, None) == 2.0 and isinstance(
        port.check_parameter("r", 2, 1.5, None), float
    )
    assert port.check_parameter("topics", ("a", "b"), ["x"], None) == ["a", "b"]
    with pytest.raises(TypeError, match="parameter 'enabled': expected bool, got 1"):
        port.check_parameter("enabled", 1, True, None)
    with pytest.raises(TypeError, match="parameter 'name': expected str, got 3"):
        port.check_parameter("name", 3, "x", None)
    bounded = port.ParameterDescriptor(min_value=0.0, max_value=3.0)
    with pytest.raises(ValueError, match=r"parameter 'threshold': 3\.5 is above its maximum 3\.0"):
        port.check_parameter("threshold", 3.5, 1.0, bounded)
    with pytest.raises(ValueError, match="is below its minimum"):
        port.check_parameter("threshold", -1.0, 1.0, bounded)
    choice = port.ParameterDescriptor(choices=("ros_drivers", "mgonzs13"))
    with pytest.raises(ValueError, match="'other' is not one of"):
        port.check_parameter("audio_flavour", "other", "ros_drivers", choice)


def test_logger_format_levels_and_throttling() -> None:
    stream = io.StringIO()
    logger = port.StreamLogger("vispeak", stream=stream)
    assert isinstance(logger, port.Logger)
    assert not logger.debug("hidden")
    results = [logger.warn("slow frame", throttle_duration_sec=60.0) for _ in range(3)]
    assert results == [True, False, False]
    assert [logger.info("once", once=True) for _ in range(2)] == [True, False]
    assert [logger.error("skip", skip_first=True) for _ in range(2)] == [False, True]
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("[WARN] [") and lines[0].endswith("] [vispeak]: slow frame")
    assert lines[1].endswith("[vispeak]: once") and lines[2].startswith("[ERROR]")
    logger.set_level("DEBUG")
    assert logger.debug("shown")
