"""The node's parameters, config file, launch file and README tables say the same thing."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from vispeak_ros.ros.node_main import default_params_file, parse_ros_args
from vispeak_ros.ros.node_params import BY_NAME, PARAMETERS
from vispeak_ros.runtime.config import RuntimeConfig

REPO_ROOT = Path(__file__).resolve().parents[3]
HOST_PARAMETERS = {"autostart": True}  # declared by the rclpy host, kept in the same file


def readme_table(heading: str) -> list[list[str]]:
    """Rows (cells stripped of backticks) of the first table after `heading` in the README."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    after = text[text.index(heading) :]
    rows = []
    for line in after.splitlines()[1:]:
        if line.startswith("#"):
            break
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
        elif rows and not line.strip():
            break
    return rows[1:]  # without the header row


def launch_arguments() -> list[tuple[str, str, str]]:
    tree = ast.parse((REPO_ROOT / "launch" / "assistant.launch.py").read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument":
            keywords = {k.arg: k.value for k in node.keywords}
            default = keywords["default_value"]
            shown = default.value if isinstance(default, ast.Constant) else ast.unparse(default)
            found.append((node.args[0].value, shown, keywords["description"].value))
    return found


def yaml_value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else json.dumps(value)


def test_config_file_holds_every_parameter_with_its_default() -> None:
    document = yaml.safe_load((REPO_ROOT / "config" / "assistant.yaml").read_text(encoding="utf-8"))
    values = document["/**/vispeak"]["ros__parameters"]
    assert set(values) == set(BY_NAME) | set(HOST_PARAMETERS)
    for parameter in PARAMETERS:
        assert values[parameter.name] == parameter.default, parameter.name
    assert default_params_file().resolve() == (REPO_ROOT / "config" / "assistant.yaml").resolve()


def test_every_runtime_setting_is_a_node_parameter_with_the_same_default() -> None:
    runtime = RuntimeConfig()
    for name in RuntimeConfig.__dataclass_fields__:
        default = getattr(runtime, name)
        assert name in BY_NAME, f"RuntimeConfig.{name} has no node parameter"
        expected = list(default) if isinstance(default, tuple) else default
        assert BY_NAME[name].default == expected, name


def test_only_tunable_parameters_may_change_at_run_time() -> None:
    for parameter in PARAMETERS:
        assert parameter.descriptor.read_only != parameter.tunable, parameter.name
        assert parameter.descriptor.description, parameter.name


def test_launch_arguments_equal_the_readme_table() -> None:
    table = readme_table("### Launch arguments")
    arguments = launch_arguments()
    assert [row[0] for row in table] == [name for name, _, _ in arguments]
    for (name, default, description), row in zip(arguments, table, strict=True):
        shown = default or '""'
        if name == "params_file":
            assert "assistant.yaml" in default and row[1] == "share/vispeak_ros/config/assistant.yaml"
        else:
            assert row[1] == shown, name
        assert row[2] == description, name


def test_launch_overrides_only_declared_parameters() -> None:
    source = (REPO_ROOT / "launch" / "assistant.launch.py").read_text(encoding="utf-8")
    overrides = re.findall(r'"(\w+)": LaunchConfiguration\("(\w+)"\)', source)
    declared = {name for name, _, _ in launch_arguments()}
    assert overrides
    for parameter, argument in overrides:
        assert parameter in BY_NAME or parameter == "use_sim_time", parameter
        assert argument in declared, argument
    assert "NOT SAFETY-RATED" in source


def test_parameter_table_in_the_readme_equals_the_declarations() -> None:
    table = readme_table("### Parameters (`config/assistant.yaml`")
    assert [row[0] for row in table] == [p.name for p in PARAMETERS]
    for parameter, row in zip(PARAMETERS, table, strict=True):
        assert row[1] == parameter.type_name, parameter.name
        assert row[2] == yaml_value(parameter.default), parameter.name
        assert (row[4] == "yes") == parameter.tunable, parameter.name
        assert row[5] == parameter.descriptor.description, parameter.name


def test_twist_mux_example_locks_on_our_heartbeat() -> None:
    document = yaml.safe_load((REPO_ROOT / "config" / "twist_mux.yaml").read_text(encoding="utf-8"))
    params = document["twist_mux"]["ros__parameters"]
    lock = params["locks"]["vispeak"]
    assert lock["topic"] == "vispeak/stop_lock" and lock["priority"] == 255
    lock_period = 1.0 / BY_NAME["lock_rate_hz"].default
    assert 2 * lock_period <= lock["timeout"] <= 10 * lock_period  # fails safe after a few missed beats
    stop_input = params["topics"]["vispeak_stop"]
    assert stop_input["topic"] == "vispeak/stop_cmd_vel" and stop_input["priority"] >= lock["priority"]


def test_ros_arguments_parse_as_rcl_does() -> None:
    args = parse_ros_args(
        ["-p", "trigger_threshold:=0.5", "-p", "behaviours:=[anomaly, wake_up]", "--params-file", "a.yaml",
         "-r", "camera/image_raw:=/cam", "-r", "__ns:=/robot", "-r", "__node:=helper", "--log-level", "debug"]
    )  # fmt: skip
    assert args.parameters == {"trigger_threshold": 0.5, "behaviours": ["anomaly", "wake_up"]}
    assert args.params_files == ["a.yaml"] and args.remappings == {"camera/image_raw": "/cam"}
    assert (args.namespace, args.node_name, args.log_level) == ("/robot", "helper", "DEBUG")
    with pytest.raises(ValueError, match="-p 'threshold' is not of the form name:=value"):
        parse_ros_args(["-p", "threshold"])
    with pytest.raises(ValueError, match="unexpected argument 'extra'"):
        parse_ros_args(["extra"])
