"""The node over real DDS in one process (isolated loopback domain): faults of the model raise the advisory stop
within one segment, the services clear and reset, run-time parameters apply."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from vispeak_ros.ros import port
from vispeak_ros.ros.diagnostics import ERROR, OK
from vispeak_ros.ros.node import VispeakNode

FPS = 10.0


@pytest.fixture(scope="module")
def backend():
    """The demo model's torch backend, loaded once for the module."""
    from vispeak_ros.runtime.assistant import Assistant
    from vispeak_ros.runtime.config import RuntimeConfig

    return Assistant(RuntimeConfig()).backend


class Rig:
    """The vispeak node spinning on its own thread, a camera publishing frames, a listener of the lock and state."""

    def __init__(self, make_node, backend, **params) -> None:
        self.port = make_node("vispeak", parameter_overrides={"audio_flavour": "none", "lock_rate_hz": 20.0, **params})
        self.logic = VispeakNode(self.port, backend=backend)
        self.logic.configure()
        self.logic.activate()
        self.spinner = threading.Thread(target=self.port.spin, daemon=True)
        self.spinner.start()
        self.peer = make_node("peer")
        self.camera = self.peer.create_publisher("sensor_msgs/msg/Image", "/camera/image_raw", port.SENSOR_DATA)
        self.locks: list[tuple[float, bool]] = []
        self.states: list = []
        self.peer.create_subscription(
            "std_msgs/msg/Bool", "/vispeak/stop_lock", lambda m: self.locks.append((time.monotonic(), m.data)),
            port.DEFAULT,
        )  # fmt: skip
        self.peer.create_subscription("vispeak_ros/msg/State", "/vispeak/state", self.states.append,
                                      port.TRANSIENT_LOCAL_LATCHED)  # fmt: skip
        self._stop = threading.Event()
        self._frames = threading.Thread(target=self._publish_frames, daemon=True)
        self.peer.spin_until(lambda: self.camera.matched_subscriptions() > 0, 10.0)
        self._frames.start()

    def _publish_frames(self) -> None:
        rng = np.random.default_rng(0)
        while not self._stop.is_set():
            now = time.time_ns()
            pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            header = self.peer.new_message(
                "std_msgs/msg/Header",
                stamp=self.peer.new_message("builtin_interfaces/msg/Time", sec=now // 10**9, nanosec=now % 10**9),
                frame_id="camera",
            )
            image = self.peer.new_message(
                "sensor_msgs/msg/Image", header=header, height=48, width=64, encoding="rgb8", step=64 * 3,
                data=pixels.reshape(-1),
            )  # fmt: skip
            self.camera.publish(image)
            time.sleep(1.0 / FPS)

    def spin_until(self, condition, timeout_s: float) -> bool:
        return self.peer.spin_until(condition, timeout_s)

    def lock_on_since(self, t: float) -> float | None:
        return next((at for at, on in self.locks if on and at >= t), None)

    def close(self) -> None:
        self._stop.set()
        self._frames.join(2)
        self.logic.shutdown()


@pytest.fixture
def rig(make_node, backend) -> Iterator:
    rigs: list[Rig] = []
    real_step = backend.step

    def factory(**params) -> Rig:
        rigs.append(Rig(make_node, backend, **params))
        return rigs[-1]

    yield factory
    backend.step = real_step
    for r in rigs:
        r.close()


def inject(backend, on_call: int, fault) -> list[float]:
    """Make the backend's `on_call`-th step fail with `fault()` (raise or hang); returns when it happened."""
    real_step, calls, when = backend.step, [0], []

    def step(rows, kind):
        calls[0] += 1
        if calls[0] == on_call:
            when.append(time.monotonic())
            fault()
        return real_step(rows, kind)

    backend.step = step
    return when


def test_backend_exception_raises_the_stop_within_one_segment(rig, backend) -> None:
    def explode() -> None:
        raise RuntimeError("injected CUDA error")

    when = inject(backend, 3, explode)
    r = rig()
    assert r.spin_until(lambda: when and r.lock_on_since(when[0]), 10.0), "the lock never went on"
    assert r.lock_on_since(when[0]) - when[0] <= 1.0  # one segment
    level, message, values = r.logic.diagnostics()
    assert level == ERROR and message == "fault: backend raised RuntimeError: injected CUDA error"
    assert values["backend_errors"] == 1
    assert r.spin_until(lambda: r.states and r.states[-1].fault and r.states[-1].stop_active, 5.0)

    # The model recovers (the next seconds process fine); the fault stays latched until an operator clears it.
    r.spin_until(lambda: r.logic.worker.stats.processed >= 6, 20.0)
    assert r.logic.stop_snapshot().active
    client = r.peer.create_client("std_srvs/srv/Trigger", "/vispeak/clear_stop")
    assert client.wait_for_service(10.0)
    reply = client.call(timeout_s=10.0)
    assert reply.success and reply.message.startswith("cleared stop (fault: backend raised RuntimeError")
    cleared = time.monotonic()
    assert r.spin_until(lambda: any(at > cleared and not on for at, on in r.locks), 5.0)
    assert r.logic.diagnostics()[0] == OK


def test_a_hung_model_step_raises_the_stop_before_it_returns(rig, backend) -> None:
    when = inject(backend, 3, lambda: time.sleep(3.0))
    r = rig(watchdog_timeout_s=0.5)
    assert r.spin_until(lambda: when and r.lock_on_since(when[0]), 10.0)
    assert r.lock_on_since(when[0]) - when[0] <= 1.0
    assert r.logic.diagnostics()[1].startswith("fault: model step hung for")
    client = r.peer.create_client("std_srvs/srv/Trigger", "/vispeak/clear_stop")
    reply = client.call(timeout_s=10.0) if client.wait_for_service(10.0) else None
    assert reply is not None and not reply.success and "still present" in reply.message


def test_reset_starts_a_fresh_session_and_parameters_apply_at_run_time(rig) -> None:
    r = rig()
    r.spin_until(lambda: r.logic.worker.stats.processed >= 2, 20.0)
    client = r.peer.create_client("std_srvs/srv/Trigger", "/vispeak/reset")
    assert client.wait_for_service(10.0)
    reply = client.call(timeout_s=15.0)
    assert reply.success and reply.message == "session reset"
    assert r.logic.worker.stats.processed == 0  # a new worker over a fresh session
    assert r.spin_until(lambda: r.logic.worker.stats.processed >= 1, 20.0)

    assert r.port.set_parameters({"trigger_threshold": 2.5}) == (True, "")
    assert r.logic.assistant.config.trigger_threshold == 2.5
    accepted, reason = r.port.set_parameters({"stop_behaviours": ["anomaly", "dancing"]})
    assert not accepted and "unknown behaviour(s) ['dancing']" in reason
    accepted, reason = r.port.set_parameters({"checkpoint": "/elsewhere"})
    assert not accepted and "read-only" in reason
