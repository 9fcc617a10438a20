"""The vispeak node as its own process (the demo model, Cyclone DDS, the test's isolated domain) and a probe in
the test process that feeds it and reads what it says: /diagnostics, ~/informative, ~/events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
NS = 1_000_000_000


def proc_env(dds_env: dict[str, str]) -> dict[str, str]:
    env = dict(dds_env)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class NodeProcess:
    """`vispeak-node --transport dds --ros-args -p ...`; stderr goes to a file (a full pipe would block it)."""

    def __init__(self, dds_env: dict[str, str], *params: str) -> None:
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  # lives as long as the process
        ros_args = [arg for p in params for arg in ("-p", p)]
        self.process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "scripts" / "vispeak-node"), "--transport", "dds", "--ros-args",
             *ros_args],
            env=proc_env(dds_env), stdout=subprocess.DEVNULL, stderr=self.log, text=True,
        )  # fmt: skip

    def alive(self) -> bool:
        return self.process.poll() is None

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> int:
        """SIGTERM; the exit code."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class Probe:
    """A DDS peer: publishers of the node's inputs (and /clock), subscriber of its diagnostics and outputs."""

    def __init__(self, make_node: Callable[..., Any], audio_flavour: str = "mgonzs13", namespace: str = "/vispeak"):
        from vispeak_ros.ros import port
        from vispeak_ros.ros.adapters.dds_adapter import build_typestore

        self.port_mod = port
        self.node = make_node("probe", typestore=build_typestore(audio_flavour=audio_flavour))
        self.new = self.node.new_message
        self.diagnostics: list[tuple[int, str, dict[str, str]]] = []
        self.node_time_ns = -1
        self.informative: list[Any] = []
        self.events: list[Any] = []
        self.node.create_subscription("diagnostic_msgs/msg/DiagnosticArray", "/diagnostics", self._on_diag,
                                      port.DIAGNOSTICS_QOS)  # fmt: skip
        self.node.create_subscription("vispeak_ros/msg/Informative", f"{namespace}/informative",
                                      self.informative.append, port.DEFAULT)  # fmt: skip
        self.node.create_subscription("vispeak_ros/msg/Event", f"{namespace}/events", self.events.append, port.DEFAULT)
        self.clock = self.node.create_publisher(port.CLOCK_TYPE, port.CLOCK_TOPIC, port.DEFAULT)
        self.publishers: dict[str, Any] = {}

    def _on_diag(self, msg: Any) -> None:
        self.node_time_ns = msg.header.stamp.sec * NS + msg.header.stamp.nanosec  # the node's ROS time
        for status in msg.status:
            if status.name == "vispeak: assistant":
                values = {kv.key: kv.value for kv in status.values}
                self.diagnostics.append((int(status.level), status.message, values))

    def publisher(self, msg_type: str, topic: str, qos: Any = None) -> Any:
        if topic not in self.publishers:
            self.publishers[topic] = self.node.create_publisher(msg_type, topic, qos or self.port_mod.SENSOR_DATA)
        return self.publishers[topic]

    def wait_matched(self, timeout_s: float = 120.0) -> bool:
        """Every publisher, /clock included, reaches the node (a sample sent earlier may have been lost)."""
        writers = [self.clock, *self.publishers.values()]
        return self.node.spin_until(lambda: all(p.matched_subscriptions() for p in writers), timeout_s)

    def sync_clock(self, ns: int, timeout_s: float = 30.0) -> bool:
        """Publish /clock until the node's diagnostics are stamped with it (/clock is best effort, depth 1)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.set_clock(ns)
            if self.node.spin_until(lambda: self.node_time_ns == ns, 0.5):
                return True
        return False

    def time(self, ns: int) -> Any:
        return self.new("builtin_interfaces/msg/Time", sec=ns // NS, nanosec=ns % NS)

    def header(self, ns: int, frame_id: str = "camera") -> Any:
        return self.new("std_msgs/msg/Header", stamp=self.time(ns), frame_id=frame_id)

    def set_clock(self, ns: int) -> None:
        self.clock.publish(self.new(self.port_mod.CLOCK_TYPE, clock=self.time(ns)))

    def latest(self) -> dict[str, str]:
        return self.diagnostics[-1][2] if self.diagnostics else {}

    def count(self, key: str) -> int:
        value = self.latest().get(key, "0")
        return int(value) if value.lstrip("-").isdigit() else 0

    def wait_diagnostics(self, condition: Callable[[dict[str, str]], bool], timeout_s: float) -> bool:
        """Until a diagnostics report satisfies `condition` (reports are compared as they arrive)."""
        seen = [len(self.diagnostics)]

        def check() -> bool:
            fresh = self.diagnostics[seen[0] :]
            seen[0] = len(self.diagnostics)
            return any(condition(values) for _, _, values in fresh)

        return self.node.spin_until(check, timeout_s)

    def spin(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.node.spin_once(min(0.05, max(0.0, deadline - time.monotonic())))


def play(probe: Probe, dds_env: dict[str, str], *args: str, recording: Path | None = None,
         timeout_s: float = 120.0) -> dict:  # fmt: skip
    """test/ros/node/player.py (paced by the node's scores) on a recording, the demo one by default; the probe spins
    meanwhile, collecting what the node says."""
    from vispeak_ros.data import demo_recording

    player = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "test" / "ros" / "node" / "player.py"), str(recording or demo_recording()),
         *args], env=proc_env(dds_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while player.poll() is None and time.monotonic() < deadline:
        probe.spin(0.1)
    if player.poll() is None:
        player.kill()
    out, err = player.communicate()
    assert player.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])
