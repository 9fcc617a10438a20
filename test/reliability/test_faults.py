"""Faults around the node: the camera process crashes and comes back (on the same clock, or on one that moved),
the speech listener dies or freezes mid-answer. The node keeps going and catches up: scores for the new camera's
frames within 2 s of its first frame, every answer still said. (Backend exceptions and hangs: test/ros/node/
test_node_faults.py; sim time jumping back during a replay: test_fuzz_inputs.py; a TTS action server that goes
away: test_faults_rclpy.py, where rclpy is installed.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from relkit import NS, NodeProcess, Probe, play, proc_env

from vispeak_ros.ros import port
from vispeak_ros.ros.node import VispeakNode

HERE = Path(__file__).resolve().parent
RECOVERY_S = 2.0


@pytest.fixture(scope="module")
def backend():
    """The demo model's torch backend, loaded once for the module."""
    from vispeak_ros.runtime.assistant import Assistant
    from vispeak_ros.runtime.config import RuntimeConfig

    return Assistant(RuntimeConfig()).backend


@dataclass
class Camera:
    process: subprocess.Popen
    first_stamp_ns: int
    first_at: float  # time.monotonic() when it said its first frame went out


def start_camera(dds_env: dict[str, str], offset_s: float = 0.0) -> Camera:
    process = subprocess.Popen([sys.executable, str(HERE / "peer.py"), "camera", "--offset-s", str(offset_s)],
                               env=proc_env(dds_env), stdout=subprocess.PIPE, text=True)  # fmt: skip
    line = process.stdout.readline()
    assert line.startswith("first "), line
    return Camera(process, int(line.split()[1]), time.monotonic())


class LiveNode:
    """The vispeak node (video only, wall time) spinning on its own thread; a peer that notes when each score
    arrives."""

    def __init__(self, make_node, backend) -> None:
        self.port = make_node("vispeak", parameter_overrides={"audio_flavour": "none"})
        self.logic = VispeakNode(self.port, backend=backend)
        self.logic.configure()
        self.logic.activate()
        self.peer = make_node("peer")
        self.scores: list[tuple[float, int]] = []  # (arrival, monotonic s; the scored frame's stamp)
        self.peer.create_subscription("vispeak_ros/msg/Informative", "/vispeak/informative", self._on_score,
                                      port.DEFAULT)  # fmt: skip
        self.threads = [threading.Thread(target=n.spin, daemon=True) for n in (self.port, self.peer)]
        for thread in self.threads:
            thread.start()

    def _on_score(self, msg) -> None:
        self.scores.append((time.monotonic(), msg.header.stamp.sec * NS + msg.header.stamp.nanosec))

    def scored_since(self, stamp_ns: int) -> float | None:
        """Arrival of the first score of a frame stamped at or after `stamp_ns`."""
        return next((at for at, stamp in list(self.scores) if stamp >= stamp_ns), None)

    def wait(self, condition, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        return bool(condition())

    def close(self) -> None:
        self.logic.shutdown()


@pytest.fixture
def live(make_node, backend) -> Iterator[LiveNode]:
    node = LiveNode(make_node, backend)
    yield node
    node.close()


@pytest.mark.parametrize("offset_s", [0.0, 1000.0], ids=["same clock", "its clock moved 1000 s"])
def test_a_camera_that_crashes_and_comes_back_is_scored_within_2_s_of_its_first_new_frame(offset_s, dds_env,
                                                                                          live) -> None:  # fmt: skip
    first = start_camera(dds_env)
    try:
        assert live.wait(lambda: live.scored_since(first.first_stamp_ns), 30.0), "the first camera was never scored"
    finally:
        first.process.kill()  # SIGKILL: no goodbye on the graph
        first.process.wait()
    time.sleep(3.0)  # the outage: seconds close empty, nothing is scored
    second = start_camera(dds_env, offset_s)
    try:
        assert live.wait(lambda: live.scored_since(second.first_stamp_ns), 10.0), live.logic.diagnostics()[2]
        took = live.scored_since(second.first_stamp_ns) - second.first_at
    finally:
        second.process.kill()
        second.process.wait()
    print(f"scored {took:.2f} s after the new camera's first frame")
    assert took <= RECOVERY_S, f"scored {took:.2f} s after the new camera's first frame"
    _, _, values = live.logic.diagnostics()
    assert values.get("stream_restarts", 0) == (1 if offset_s else 0), values
    assert live.logic.worker.alive and not live.logic.stop_snapshot().fault


def start_listener(dds_env: dict[str, str]) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, str(HERE / "peer.py"), "speech"], env=proc_env(dds_env),
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout.readline().strip() == "ready"
    return process


def test_the_speech_listener_dying_or_freezing_mid_answer_changes_nothing(dds_env, make_node) -> None:
    """A TTS node that crashes (gone from the graph) and one that freezes (SIGSTOP: matched, reliable, never
    acknowledging) while the demo recording is answered: every later sentence is still said."""
    node = NodeProcess(
        dds_env, "use_sim_time:=true", "camera_transport:=compressed", "mute_audio_while_speaking:=false"
    )
    dying, freezing = start_listener(dds_env), start_listener(dds_env)
    probe = Probe(make_node)
    heard: list[tuple[float, str]] = []
    probe.node.create_subscription("std_msgs/msg/String", "/vispeak/speech",
                                   lambda m: heard.append((time.monotonic(), m.data)), port.DEFAULT)  # fmt: skip
    struck: list[float] = []

    def strike() -> None:  # at the first sentence the dying listener hears
        said = dying.stdout.readline()
        if said:
            dying.kill()
            freezing.send_signal(signal.SIGSTOP)
            struck.append(time.monotonic())

    watcher = threading.Thread(target=strike, daemon=True)
    watcher.start()
    try:
        play(probe, dds_env, "--rate", "3", "--until-s", "34")  # the demo model speaks at 5, 17 and 30 s
        probe.spin(1.0)
        assert node.alive(), node.stderr()
        level, message, _ = probe.diagnostics[-1]
        assert level != 2, message
    finally:
        freezing.send_signal(signal.SIGCONT)
        for process in (dying, freezing):
            process.kill()
            process.wait()
        code = node.stop()
    assert code == 0 and "Traceback" not in node.stderr(), node.stderr()
    assert struck, "no sentence was ever said"
    later = [text for at, text in heard if at > struck[0] + 0.5]
    assert len(later) >= 2, heard  # the answers after the strike (the demo asks and gestures again) were said
