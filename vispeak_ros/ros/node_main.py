"""`vispeak-node`: run the vispeak node on rclpy (a robot) or on Cyclone DDS (a container without ROS).

Both transports take the same ROS arguments: `--ros-args -p name:=value --params-file FILE -r from:=to
-r __ns:=/ns -r __node:=name --log-level LEVEL`. Without `--params-file` the packaged config/assistant.yaml is
used. `--transport auto` (the default) picks rclpy when it imports, else Cyclone DDS, and says which.

Over Cyclone DDS the node joins the ROS graph the environment describes (ROS_DOMAIN_ID,
ROS_LOCALHOST_ONLY / ROS_AUTOMATIC_DISCOVERY_RANGE, CYCLONEDDS_URI), like a ROS node would.
"""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vispeak_ros.ros.node import NODE_NAME, NodeError, VispeakNode


def default_params_file() -> Path:
    """config/assistant.yaml: in the ROS package's share directory (colcon), inside the pip-installed package, or
    at the top of a source checkout."""
    from importlib import resources

    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            shared = Path(get_package_share_directory("vispeak_ros")) / "config" / "assistant.yaml"
            if shared.is_file():
                return shared
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    installed = Path(str(resources.files("vispeak_ros") / "config" / "assistant.yaml"))
    if installed.is_file():
        return installed
    return Path(__file__).resolve().parents[2] / "config" / "assistant.yaml"


@dataclass
class RosArgs:
    """The subset of `--ros-args` a node needs (rcl's syntax)."""

    parameters: dict[str, Any] = field(default_factory=dict)
    params_files: list[str] = field(default_factory=list)
    remappings: dict[str, str] = field(default_factory=dict)
    namespace: str = "/"
    node_name: str = NODE_NAME
    log_level: str = "INFO"


def parse_ros_args(argv: list[str]) -> RosArgs:
    """Parse what follows `--ros-args` (until `--`). Raises ValueError naming a malformed argument."""
    import yaml

    args, items = RosArgs(), iter(argv)
    for item in items:
        if item == "--":
            break
        if item in ("-p", "--param", "-r", "--remap", "--params-file", "--log-level"):
            value = next(items, None)
            if value is None:
                raise ValueError(f"--ros-args: {item} needs a value")
            if item == "--params-file":
                args.params_files.append(value)
                continue
            if item == "--log-level":
                args.log_level = value.split(":=")[-1].upper()
                continue
            if ":=" not in value:
                raise ValueError(f"--ros-args: {item} {value!r} is not of the form name:=value")
            name, text = value.split(":=", 1)
            if item in ("-p", "--param"):
                args.parameters[name] = yaml.safe_load(text) if text else ""
            elif name == "__ns":
                args.namespace = text
            elif name == "__node":
                args.node_name = text
            else:
                args.remappings[name] = text
        else:
            raise ValueError(f"--ros-args: unexpected argument {item!r}")
    return args


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--ros-args" in argv:
        at = argv.index("--ros-args")
        return argv[:at], argv[at + 1 :]
    return argv, []


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def run_dds(ros_argv: list[str]) -> int:
    """Host the node on a Cyclone DDS participant until Ctrl-C or SIGTERM."""
    from vispeak_ros.ros.adapters.dds_adapter import DdsNode, _load_params_file, build_typestore

    ros = parse_ros_args(ros_argv)
    files = ros.params_files or [str(default_params_file())]
    overrides: dict[str, Any] = {}
    for path in files:
        if not Path(path).is_file():
            raise NodeError(f"params file not found: {path}")
        overrides.update(_load_params_file(path, ros.node_name, ros.namespace))
    overrides.update(ros.parameters)
    flavour = overrides.get("audio_flavour", "mgonzs13")
    store = build_typestore(audio_flavour=flavour if flavour != "none" else None)
    node = DdsNode(
        ros.node_name,
        namespace=ros.namespace,
        parameter_overrides=overrides,
        typestore=store,
        remappings=ros.remappings,
    )
    node.logger.set_level(ros.log_level)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `ros2 launch` and docker stop send SIGTERM
    logic = None
    try:
        logic = VispeakNode(node)
        logic.configure()
        logic.activate()
        node.logger.info(f"on Cyclone DDS, domain {node.domain_id} ({node.discovery_range} discovery)")
        node.spin()
    except KeyboardInterrupt:
        pass
    finally:
        if logic is not None:
            logic.shutdown()
        node.shutdown()
        signal.signal(signal.SIGTERM, previous)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, ros_argv = _split(argv)
    parser = argparse.ArgumentParser(
        prog="vispeak-node",
        description="The vispeak node: camera + microphone in, timed feedback, events and an advisory stop lock out.",
        epilog="ROS arguments follow --ros-args, e.g. --ros-args -p trigger_threshold:=0.5 -r camera/image_raw:=/cam",
    )
    parser.add_argument(
        "--transport",
        choices=("auto", "rclpy", "dds"),
        default="auto",
        help="rclpy on a ROS 2 robot, dds (Cyclone DDS, ROS 2 wire format) without ROS; auto: rclpy if it imports",
    )
    args = parser.parse_args(own)
    transport = args.transport
    if transport == "auto":
        try:
            import rclpy  # noqa: F401

            transport = "rclpy"
        except ImportError:
            transport = "dds"
            print("vispeak-node: rclpy is not available; running on Cyclone DDS", file=sys.stderr)
    try:
        if transport == "rclpy":
            from vispeak_ros.ros.rclpy_host import run

            if "--params-file" not in ros_argv:
                ros_argv = ["--params-file", str(default_params_file()), *ros_argv]  # the user's -p win
            return run(["vispeak-node", "--ros-args", *ros_argv])
        return run_dds(ros_argv)
    except (NodeError, ValueError) as error:
        print(f"vispeak-node: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
