"""The rclpy adapter without ROS: it imports, offers every graph-port member with the port's signatures (as the
DDS adapter does), and its rclpy-free mappings (names, sequences, parameter descriptors) are right."""

from __future__ import annotations

import array
import ast
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vispeak_ros.ros import port
from vispeak_ros.ros.adapters import rclpy_adapter as ra

REPO_ROOT = Path(__file__).resolve().parents[3]


def _port_members() -> set[str]:
    return {name for name in vars(port.GraphPort) if not name.startswith("_")}


def _class_methods(path: Path, class_name: str) -> dict[str, list[str]]:
    """Methods of a class in a source file, with their parameter names (ast: no import of its middleware)."""
    tree = ast.parse(path.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    return {
        f.name: [a.arg for a in (*f.args.args, f.args.vararg, *f.args.kwonlyargs, f.args.kwarg) if a is not None]
        for f in cls.body
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def test_importing_the_adapter_and_host_imports_no_rclpy() -> None:
    code = (
        "import sys, vispeak_ros.ros.adapters.rclpy_adapter, vispeak_ros.ros.rclpy_host;"
        "print(sorted(m for m in ('rclpy', 'rcl_interfaces', 'torch', 'cyclonedds') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_both_adapters_offer_every_graph_port_member_with_its_signature() -> None:
    members = _port_members()
    assert {"create_publisher", "declare_parameter", "create_action_client", "now_ns", "spin", "name"} <= members
    rclpy_methods = _class_methods(REPO_ROOT / "vispeak_ros/ros/adapters/rclpy_adapter.py", "RclpyPort")
    dds_methods = _class_methods(REPO_ROOT / "vispeak_ros/ros/adapters/dds_adapter.py", "DdsNode")
    assert members <= set(rclpy_methods), sorted(members - set(rclpy_methods))
    assert members <= set(dds_methods), sorted(members - set(dds_methods))
    for name in members:
        member = vars(port.GraphPort)[name]
        expected = list(inspect.signature(member.fget if isinstance(member, property) else member).parameters)
        assert rclpy_methods[name] == expected, (name, rclpy_methods[name], expected)
    # The extras tools and tests use on either adapter.
    for extra in ("set_parameters", "parameters", "spin_until", "spin_once", "resolve"):
        assert extra in rclpy_methods and extra in dds_methods, extra
    assert isinstance(ra.RclpyPort.name, property) and isinstance(ra.RclpyPort.logger, property)


def test_interface_names_are_checked_before_any_import() -> None:
    assert ra.split_interface_name("audio_common_msgs/action/TTS") == ("audio_common_msgs", "action", "TTS")
    for bad in ("std_msgs/String", "std_msgs/msgs/String", "std_msgs/msg/", "a/msg/B/C", "std-msgs/msg/String"):
        with pytest.raises(ValueError, match="not a ROS 2 interface name"):
            ra.split_interface_name(bad)
    with pytest.raises(KeyError, match=r"is not installed: no Python module no_such_pkg_xyz\.msg"):
        ra.interface_class("no_such_pkg_xyz/msg/Thing")


def test_numeric_sequences_become_the_arrays_rclpy_keeps() -> None:
    assert ra.sequence_typecode("sequence<uint8>") == "B"
    assert ra.sequence_typecode("sequence<float, 16>") == "f"
    assert ra.sequence_typecode("sequence<string>") is None
    assert ra.sequence_typecode("double[9]") is None  # fixed arrays are numpy in rclpy: left to it
    data = ra.as_sequence(b"\x01\x02\xff", "B")
    assert data == array.array("B", [1, 2, 255])
    samples = ra.as_sequence(np.array([0.5, -1.0], dtype=np.float64), "f")
    assert samples.typecode == "f" and list(samples) == [0.5, -1.0]
    pcm = ra.as_sequence(memoryview(np.array([1, -2], dtype=np.int16).tobytes()), "h")
    assert list(pcm) == [1, -2]
    same = array.array("B", [7])
    assert ra.as_sequence(same, "B") is same
    assert ra.as_sequence([1, 2], "B") == [1, 2]  # lists stay for rclpy to check


def test_parameter_descriptors_map_to_rcl_interfaces_fields() -> None:
    threshold = port.ParameterDescriptor("trigger threshold", min_value=0.0, max_value=3.0)
    assert ra.descriptor_fields(0.35, threshold, False) == {
        "description": "trigger threshold",
        "read_only": False,
        "dynamic_typing": False,
        "additional_constraints": "",
        "floating_point_range": (0.0, 3.0),
    }
    window = ra.descriptor_fields(240, port.ParameterDescriptor(read_only=True, min_value=0.5), False)
    assert window["integer_range"] == (1, ra.INT64_MAX) and window["read_only"] is True
    upper = ra.descriptor_fields(1.0, port.ParameterDescriptor(max_value=4), False)
    assert upper["floating_point_range"] == (-ra.FLOAT64_MAX, 4.0)
    sink = ra.descriptor_fields("topic", port.ParameterDescriptor(choices=("topic", "tts_action")), False)
    assert sink["additional_constraints"] == "one of: topic, tts_action" and "integer_range" not in sink
    assert "integer_range" not in ra.descriptor_fields(True, port.ParameterDescriptor(min_value=0), False)
    assert ra.descriptor_fields("", None, True)["dynamic_typing"] is True


def test_parameter_values_widen_and_untyped_ones_are_dynamic() -> None:
    assert ra.widen_elements([1, 2.5], [0.5]) == [1.0, 2.5]
    assert ra.widen_elements(("a",), ("b",)) == ("a",)
    assert ra.plain_value(array.array("q", [1, 2])) == [1, 2]
    assert ra.is_dynamically_typed(["anomaly"], []) and ra.is_dynamically_typed([], ["x"])
    assert ra.is_dynamically_typed(None, None)
    assert not ra.is_dynamically_typed(["anomaly"], ["fall"]) and not ra.is_dynamically_typed(0.3, 0.5)
