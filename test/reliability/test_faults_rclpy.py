"""The speech sink disappearing on a ROS 2 robot: with `speech_sink: tts_action`, a TTS action server that goes away
would leave goals waiting for ever (and the sentences unsaid); the node then says them on ~/speech instead and
counts them on /diagnostics.

Runs only where rclpy and audio_common_msgs (its TTS action) import: a sourced ROS 2 install with audio_common.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs rclpy: source a ROS 2 install (Humble or Jazzy) to run these")
if getattr(rclpy, "__file__", None) is None:  # a folder named rclpy on sys.path, not the package
    pytest.skip("needs rclpy: source a ROS 2 install (Humble or Jazzy) to run these", allow_module_level=True)

from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from vispeak_ros.ros import isolation, port  # noqa: E402
from vispeak_ros.ros.adapters.rclpy_adapter import RclpyPort, interface_class  # noqa: E402
from vispeak_ros.ros.node import VispeakNode  # noqa: E402

TTS = "audio_common_msgs/action/TTS"


@pytest.fixture(scope="module")
def context() -> Iterator[object]:
    try:
        interface_class(TTS)
    except KeyError:
        pytest.skip(f"needs {TTS} (mgonzs13/audio_common)")
    saved = dict(os.environ)
    isolation.isolate_this_process()  # read by rmw when the context starts
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        yield ctx
    finally:
        ctx.try_shutdown()
        os.environ.clear()
        os.environ.update(saved)


def spin_all(ports: list[RclpyPort], condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return condition()
        for p in ports:
            p.spin_once(0.01)
    return True


def test_sentences_go_to_the_speech_topic_once_the_tts_server_is_gone(context) -> None:
    from rclpy.action import ActionServer
    from rclpy.executors import SingleThreadedExecutor

    action = interface_class(TTS)
    spoken: list[str] = []

    def execute(goal_handle):
        spoken.append(goal_handle.request.text)
        goal_handle.succeed()
        return action.Result()

    server_node = Node("tts", context=context)
    server = ActionServer(server_node, action, "say", execute_callback=execute)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(server_node)
    serving = threading.Thread(target=executor.spin, daemon=True)
    serving.start()
    overrides = {"speech_sink": "tts_action", "audio_flavour": "none"}
    node = RclpyPort(Node("vispeak", context=context,
                          parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]))  # fmt: skip
    listener = RclpyPort(Node("listener", context=context))
    on_topic: list[str] = []
    listener.create_subscription("std_msgs/msg/String", "/vispeak/speech", lambda m: on_topic.append(m.data),
                                 port.DEFAULT)  # fmt: skip
    logic = VispeakNode(node)
    try:
        logic.configure()
        logic.activate()
        assert spin_all([node, listener], logic._tts.server_is_ready, 10.0)
        logic._say("Hello!")
        assert spin_all([node, listener], lambda: spoken == ["Hello!"], 10.0)

        executor.shutdown()  # the TTS node goes away
        server.destroy()
        server_node.destroy_node()
        serving.join(5.0)
        assert spin_all([node, listener], lambda: not logic._tts.server_is_ready(), 10.0)
        logic._say("Still here.")
        assert spin_all([node, listener], lambda: on_topic == ["Still here."], 10.0)
        assert logic.diagnostics()[2]["speech to ~/speech (no TTS server)"] == 1
    finally:
        logic.shutdown()
        listener.shutdown()
        node.shutdown()
