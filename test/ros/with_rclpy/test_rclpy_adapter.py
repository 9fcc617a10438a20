"""The rclpy adapter as a graph port, against real rclpy: topics, QoS, messages, services, parameters (overrides,
descriptors, `ros2 param set` through the parameter service, the callback), sim time, timers, actions, shutdown.

Runs only where rclpy imports (a sourced ROS 2 Humble or Jazzy; see docker/ros_check.sh). Every node joins a
loopback-only graph in a free random domain (vispeak_ros.ros.isolation), never the user's.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs rclpy: source a ROS 2 install (Humble or Jazzy) to run these")
if getattr(rclpy, "__file__", None) is None:  # a folder named rclpy on sys.path, not the package
    pytest.skip("needs rclpy: source a ROS 2 install (Humble or Jazzy) to run these", allow_module_level=True)

from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from vispeak_ros.ros import isolation, port  # noqa: E402
from vispeak_ros.ros.adapters.rclpy_adapter import RclpyPort, interface_class  # noqa: E402


@pytest.fixture(scope="module")
def context() -> Iterator[object]:
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


@pytest.fixture
def make_port(context: object) -> Iterator[Callable[..., RclpyPort]]:
    ports: list[RclpyPort] = []

    def make(name: str, **overrides: object) -> RclpyPort:
        node = Node(name, context=context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
        ports.append(RclpyPort(node))
        return ports[-1]

    yield make
    for p in ports:
        p.shutdown()


def spin_all(ports: list[RclpyPort], condition: Callable[[], bool], timeout_s: float) -> bool:
    """Spin several ports from this thread (each has its own executor) until `condition()` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return condition()
        for p in ports:
            p.spin_once(0.01)
    return True


def test_publish_and_subscribe_images_with_sensor_qos(make_port) -> None:
    camera = make_port("camera")
    node = make_port("vispeak")
    frames = camera.create_publisher("sensor_msgs/msg/Image", "camera/image_raw", port.DEFAULT)
    got: list[object] = []
    sub = node.create_subscription("sensor_msgs/msg/Image", "camera/image_raw", got.append, port.SENSOR_DATA)
    assert sub.topic == "/camera/image_raw" and frames.topic == "/camera/image_raw"
    pixels = bytes(range(18))
    image = camera.new_message("sensor_msgs/msg/Image", height=2, width=3, encoding="rgb8", step=9, data=pixels)
    assert image.header.frame_id == "" and image.data.typecode == "B"

    def delivered() -> bool:
        frames.publish(image)
        return bool(got)

    # best effort subscription, reliable publisher: they match (the usual vision-node pitfall is the reverse)
    assert spin_all([node], delivered, 10.0)
    assert bytes(memoryview(got[0].data)) == pixels and got[0].encoding == "rgb8"
    assert frames.matched_subscriptions() == 1 and sub.matched_publications() == 1


def test_latched_state_reaches_a_late_subscriber(make_port) -> None:
    talker = make_port("talker")
    state = talker.create_publisher("std_msgs/msg/String", "~/state", port.TRANSIENT_LOCAL_LATCHED)
    assert state.topic == "/talker/state"
    state.publish(talker.new_message("std_msgs/msg/String", data="idle"))
    state.publish(talker.new_message("std_msgs/msg/String", data="listening"))
    late = make_port("late")
    got: list[str] = []
    late.create_subscription(
        "std_msgs/msg/String", "/talker/state", lambda m: got.append(m.data), port.TRANSIENT_LOCAL_LATCHED
    )
    assert spin_all([late, talker], lambda: got == ["listening"], 10.0), got


def test_messages_by_ros_name_and_one_line_errors(make_port) -> None:
    p = make_port("messages")
    audio = p.new_message("std_msgs/msg/Float32MultiArray", data=[0.5, -0.25])
    assert list(audio.data) == [0.5, -0.25]
    assert interface_class("std_srvs/srv/Trigger").Request is not None
    with pytest.raises(TypeError, match=r"sensor_msgs/msg/Image has no field\(s\) colour; fields: header"):
        p.new_message("sensor_msgs/msg/Image", colour="red")
    with pytest.raises(KeyError, match=r"'sensor_msgs/msg/Nope' is not installed: sensor_msgs\.msg has no Nope"):
        p.new_message("sensor_msgs/msg/Nope")
    with pytest.raises(ValueError, match="invalid ROS name"):
        p.create_publisher("std_msgs/msg/String", "a//b", port.DEFAULT)


def test_services_and_timers(make_port) -> None:
    from std_srvs.srv import Trigger

    server = make_port("vispeak")
    calls: list[str] = []

    def clear_stop(request: object, response: object) -> object:
        calls.append("clear_stop")
        response.success = True
        response.message = "stop cleared"
        return response

    service = server.create_service("std_srvs/srv/Trigger", "~/clear_stop", clear_stop)
    assert service.name == "/vispeak/clear_stop"
    user = make_port("user")
    client = user.node.create_client(Trigger, "/vispeak/clear_stop")
    assert spin_all([server, user], client.service_is_ready, 10.0)
    future = client.call_async(Trigger.Request())
    assert spin_all([server, user], future.done, 10.0)
    assert future.result().success and future.result().message == "stop cleared" and calls == ["clear_stop"]

    ticks: list[float] = []
    timer = server.create_timer(0.05, lambda: ticks.append(time.monotonic()))
    assert server.spin_until(lambda: len(ticks) >= 4, 5.0)
    timer.cancel()
    count = len(ticks)
    server.spin_until(lambda: False, 0.2)
    assert len(ticks) == count
    with pytest.raises(ValueError, match="timer period must be positive"):
        server.create_timer(0, lambda: None)


def test_parameters_overrides_descriptors_and_run_time_changes(make_port) -> None:
    from rcl_interfaces.srv import SetParameters

    node = make_port("vispeak", trigger_threshold=1, checkpoint="/models/demo", stop_behaviours=["anomaly", "fall"])
    # overrides are checked against the default like in the DDS adapter: the int 1 widens to 1.0
    threshold = port.ParameterDescriptor("speak above this sum", min_value=0.0, max_value=3.0)
    assert node.declare_parameter("trigger_threshold", 0.35, threshold) == 1.0
    assert node.declare_parameter("checkpoint", "", port.ParameterDescriptor(read_only=True)) == "/models/demo"
    assert node.declare_parameter("stop_behaviours", ["anomaly"]) == ["anomaly", "fall"]
    assert node.declare_parameter("speech_sink", "topic", port.ParameterDescriptor(choices=("topic", "tts_action")))
    assert node.get_parameter("use_sim_time") is False
    with pytest.raises(RuntimeError, match="'checkpoint' is already declared"):
        node.declare_parameter("checkpoint", "")
    with pytest.raises(KeyError, match="parameter 'nope' is not declared"):
        node.get_parameter("nope")
    described = node.node.describe_parameter("trigger_threshold")
    assert described.description == "speak above this sum"
    assert (described.floating_point_range[0].from_value, described.floating_point_range[0].to_value) == (0.0, 3.0)
    assert node.node.describe_parameter("speech_sink").additional_constraints == "one of: topic, tts_action"

    seen: list[dict] = []

    def callback(changes: dict) -> tuple[bool, str]:
        seen.append(changes)
        return changes.get("trigger_threshold") != 2.5, "2.5 is refused by the node"

    node.add_parameter_callback(callback)
    assert node.set_parameters({"trigger_threshold": 2}) == (True, "")
    assert node.get_parameter("trigger_threshold") == 2.0 and seen == [{"trigger_threshold": 2.0}]
    assert node.set_parameters({"trigger_threshold": 2.5}) == (False, "2.5 is refused by the node")
    assert node.set_parameters({"checkpoint": "/x"})[0] is False
    assert node.set_parameters({"speech_sink": "loud"}) == (
        False,
        "parameter 'speech_sink': 'loud' is not one of ['topic', 'tts_action']",
    )
    assert node.set_parameters({"nope": 1}) == (False, "parameter 'nope' is not declared")
    assert node.get_parameter("trigger_threshold") == 2.0

    # `ros2 param set` goes through the parameter service: range checked by rclpy, then our callback
    user = make_port("user")
    client = user.node.create_client(SetParameters, "/vispeak/set_parameters")
    assert spin_all([node, user], client.service_is_ready, 10.0)

    def remote_set(value: float) -> object:
        request = SetParameters.Request(parameters=[Parameter("trigger_threshold", value=value).to_parameter_msg()])
        future = client.call_async(request)
        assert spin_all([node, user], future.done, 10.0)
        return future.result().results[0]

    assert remote_set(0.5).successful and node.get_parameter("trigger_threshold") == 0.5
    assert seen[-1] == {"trigger_threshold": 0.5}
    assert not remote_set(9.0).successful and not remote_set(2.5).successful
    assert node.get_parameter("trigger_threshold") == 0.5


def test_an_override_outside_the_range_fails_at_declaration(make_port) -> None:
    node = make_port("strict", trigger_threshold=9.0, behaviours="wave")
    with pytest.raises(ValueError, match=r"parameter 'trigger_threshold': 9\.0 is above its maximum 3\.0"):
        node.declare_parameter("trigger_threshold", 0.35, port.ParameterDescriptor(min_value=0.0, max_value=3.0))
    with pytest.raises(TypeError, match="parameter 'behaviours': expected a list"):
        node.declare_parameter("behaviours", ["wake_up"])


def test_sim_time_follows_clock_and_steady_timers_do_not(make_port) -> None:
    node = make_port("sim", use_sim_time=True)
    source = make_port("clock_source")
    clock = source.create_publisher(port.CLOCK_TYPE, port.CLOCK_TOPIC, port.CLOCK)
    sim_ticks: list[int] = []
    steady_ticks: list[float] = []
    node.create_timer(1.0, lambda: sim_ticks.append(node.now_ns()))
    node.create_timer(0.05, lambda: steady_ticks.append(time.monotonic()), steady=True)
    assert node.now_ns() == 0  # no /clock yet
    assert node.spin_until(lambda: len(steady_ticks) >= 3, 5.0)  # the heartbeat's clock runs without /clock
    assert not sim_ticks
    for sec in range(100, 104):
        stamp = source.new_message("builtin_interfaces/msg/Time", sec=sec, nanosec=500)

        def arrived(s: int = sec, msg: object = source.new_message(port.CLOCK_TYPE, clock=stamp)) -> bool:
            clock.publish(msg)
            return node.now_ns() == s * 1_000_000_000 + 500

        assert spin_all([node], arrived, 10.0)
    assert node.now_ns() == 103_000_000_500
    assert node.spin_until(lambda: bool(sim_ticks), 5.0)
    assert all(t >= 100_000_000_000 for t in sim_ticks)  # sim timers run on /clock, not the wall


ACTION_CANDIDATES = (
    "example_interfaces/action/Fibonacci",
    "tf2_msgs/action/LookupTransform",
    "audio_common_msgs/action/TTS",
)


def _some_action_type() -> str:
    for name in ACTION_CANDIDATES:
        try:
            interface_class(name)
            return name
        except KeyError:
            continue
    pytest.skip(f"no action type installed among {', '.join(ACTION_CANDIDATES)}")


def test_action_goals_are_sent_and_cancelled(make_port, context: object) -> None:
    from rclpy.action import ActionServer, CancelResponse
    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.executors import MultiThreadedExecutor

    action_type = _some_action_type()
    action_class = interface_class(action_type)
    executing: list[int] = []
    cancelled: list[int] = []

    def execute(goal_handle: object) -> object:
        executing.append(1)
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                cancelled.append(1)
                return action_class.Result()
            time.sleep(0.01)
        goal_handle.abort()
        return action_class.Result()

    server_node = Node("tts_server", context=context)
    server = ActionServer(
        server_node,
        action_class,
        "say",
        execute_callback=execute,
        cancel_callback=lambda _goal: CancelResponse.ACCEPT,
        callback_group=ReentrantCallbackGroup(),
    )
    executor = MultiThreadedExecutor(context=context)
    executor.add_node(server_node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        speaker = make_port("speaker")
        say = speaker.create_action_client(action_type, "say")
        assert say.name == "say" and say.action_type == action_type
        assert speaker.spin_until(say.server_is_ready, 10.0)
        say.send_goal()
        assert speaker.spin_until(lambda: executing == [1], 10.0)
        assert speaker.spin_until(lambda: say.running_goals() == 1, 10.0)
        say.cancel_goals()  # an interruption: the running goal is cancelled
        assert speaker.spin_until(lambda: cancelled == [1], 10.0)
        assert speaker.spin_until(lambda: say.running_goals() == 0, 10.0)
        # from another thread (the node's worker speaks), goal then cancel before the executor ran: never sent
        worker = threading.Thread(target=lambda: (say.send_goal(), say.cancel_goals()))
        worker.start()
        worker.join(5.0)
        assert say.running_goals() == 0
        speaker.spin_until(lambda: False, 1.0)
        assert executing == [1] and cancelled == [1]
        # a goal sent from another thread runs, and a cancel from that thread reaches it
        threading.Thread(target=say.send_goal).start()
        assert speaker.spin_until(lambda: executing == [1, 1], 10.0)
        assert speaker.spin_until(lambda: say.running_goals() == 1, 10.0)
        threading.Thread(target=say.cancel_goals).start()
        assert speaker.spin_until(lambda: cancelled == [1, 1], 10.0)
    finally:
        executor.shutdown()
        server.destroy()
        server_node.destroy_node()
        thread.join(5.0)


def test_shutdown_from_a_callback_and_twice(make_port) -> None:
    node = make_port("stopper")
    node.create_timer(0.01, node.shutdown)
    node.spin()  # returns because the timer shut the node down
    node.shutdown()
    assert node.spin_until(lambda: False, 1.0) is False
    assert node.node not in node.executor.get_nodes()
