"""The graph port over rclpy, for robots with a ROS 2 install (Humble, Jazzy).

Thin: every call maps onto the rclpy call of the same meaning. Messages are rclpy's own classes, looked up by ROS
name (``pkg/msg/Name`` -> ``pkg.msg.Name``, likewise ``srv`` and ``action``). rclpy is imported only when a port
is built or used, so importing this module (and listing its members) works without ROS.

Threading: every entity the port creates, rclpy's parameter services and a lifecycle node's services share the
node's default callback group, which rclpy makes mutually exclusive. So node-logic callbacks, parameter changes
and lifecycle transitions never run at the same time, whatever executor spins the node; the port's own executor
is single-threaded, which also keeps them on one thread (the port contract). Publishing is thread-safe in rclpy;
the action client may be used from any thread (it hands its requests to the executor thread).

Parameters behave as in the DDS adapter: an override (``-p``, ``--params-file``) is checked against the declared
default's type and the descriptor by `port.check_parameter` (ints widen to float), then declared with an
rcl_interfaces descriptor (description, read-only, integer/floating-point range, choices in
``additional_constraints``) so ``ros2 param describe`` shows it and rclpy enforces it on ``ros2 param set``.
"""

from __future__ import annotations

import array
import contextlib
import importlib
import math
import re
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from vispeak_ros.ros import port

if TYPE_CHECKING:  # pragma: no cover - typing only
    import rclpy.node

INTERFACE_KINDS = ("msg", "srv", "action")
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
FLOAT64_MAX = sys.float_info.max
# rosidl_generator_py keeps numeric sequences as array.array with these type codes (numpy uses the same codes).
SEQUENCE_TYPECODES = {
    "float": "f",
    "double": "d",
    "int8": "b",
    "uint8": "B",
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
}
_SEQUENCE = re.compile(r"sequence<(\w+)(?:,\s*\d+)?>")


# --------------------------------------------------------------------------------------------------------- pure maps
def split_interface_name(ros_type: str) -> tuple[str, str, str]:
    """``"pkg/msg/Name"`` -> ``("pkg", "msg", "Name")``; one-line ValueError for anything else."""
    parts = ros_type.split("/")
    if len(parts) != 3 or parts[1] not in INTERFACE_KINDS or not all(p.isidentifier() for p in parts):
        raise ValueError(
            f"not a ROS 2 interface name: {ros_type!r} (expected pkg/msg/Name, pkg/srv/Name or pkg/action/Name)"
        )
    return parts[0], parts[1], parts[2]


def sequence_typecode(field_type: str) -> str | None:
    """The array.array type code rclpy stores a numeric sequence field in (``"sequence<uint8>"`` -> ``"B"``)."""
    match = _SEQUENCE.fullmatch(field_type)
    return SEQUENCE_TYPECODES.get(match.group(1)) if match else None


def as_sequence(value: Any, typecode: str) -> Any:
    """Bytes-like and numpy values as the array.array rclpy keeps, without its per-element Python checks."""
    if isinstance(value, array.array) and value.typecode == typecode:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        out = array.array(typecode)
        out.frombytes(memoryview(value).cast("B"))
        return out
    if hasattr(value, "__array_interface__"):  # numpy arrays, without importing numpy here
        import numpy as np

        out = array.array(typecode)
        out.frombytes(np.ascontiguousarray(value, dtype=np.dtype(typecode)).tobytes())
        return out
    return value  # lists and tuples: rclpy converts and checks them itself


def plain_value(value: Any) -> Any:
    """A parameter value as Python gives it (rclpy hands integer and double arrays over as array.array)."""
    return list(value) if isinstance(value, array.array) else value


def widen_elements(value: Any, default: Any) -> Any:
    """Ints in a float list become floats, as `check_parameter` widens scalars (a YAML ``[1, 2.5]``)."""
    if (
        isinstance(default, (list, tuple))
        and default
        and all(isinstance(v, float) for v in default)
        and isinstance(value, (list, tuple))
    ):
        return type(value)(float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value)
    return value


def is_dynamically_typed(default: Any, value: Any) -> bool:
    """rclpy infers a parameter's type from its value; None and empty lists carry none (rclpy would call an
    empty list a byte array), so such parameters are declared with dynamic typing and checked here instead."""
    if default is None or value is None:
        return True
    return isinstance(default, (list, tuple)) and (len(default) == 0 or len(value) == 0)


def descriptor_fields(default: Any, descriptor: port.ParameterDescriptor | None, dynamic: bool) -> dict[str, Any]:
    """The rcl_interfaces/ParameterDescriptor fields for a port descriptor; ranges as (from, to) pairs."""
    descriptor = descriptor or port.ParameterDescriptor()
    fields: dict[str, Any] = {
        "description": descriptor.description,
        "read_only": descriptor.read_only,
        "dynamic_typing": dynamic,
        "additional_constraints": "",
    }
    if descriptor.choices:
        fields["additional_constraints"] = "one of: " + ", ".join(str(c) for c in descriptor.choices)
    bounded = descriptor.min_value is not None or descriptor.max_value is not None
    if bounded and not isinstance(default, bool):
        if isinstance(default, int):
            low = INT64_MIN if descriptor.min_value is None else math.ceil(descriptor.min_value)
            high = INT64_MAX if descriptor.max_value is None else math.floor(descriptor.max_value)
            fields["integer_range"] = (low, high)
        elif isinstance(default, float):
            # Unbounded ends as the largest float64: older rosidl setters refuse infinities.
            low = -FLOAT64_MAX if descriptor.min_value is None else float(descriptor.min_value)
            high = FLOAT64_MAX if descriptor.max_value is None else float(descriptor.max_value)
            fields["floating_point_range"] = (low, high)
    return fields


# --------------------------------------------------------------------------------------------------------- rclpy
@cache
def interface_class(ros_type: str) -> Any:
    """The rclpy class of a message, service or action named the ROS way."""
    package, kind, name = split_interface_name(ros_type)
    try:
        module = importlib.import_module(f"{package}.{kind}")
    except ImportError:
        raise KeyError(
            f"{ros_type!r} is not installed: no Python module {package}.{kind} (build it and source its workspace)"
        ) from None
    try:
        return getattr(module, name)
    except AttributeError:
        raise KeyError(f"{ros_type!r} is not installed: {package}.{kind} has no {name}") from None


def build_message(cls: Any, ros_type: str, fields: Mapping[str, Any]) -> Any:
    """``cls(**fields)`` with the DDS adapter's error for unknown fields and fast numeric sequences."""
    types = cls.get_fields_and_field_types()
    unknown = sorted(set(fields) - set(types))
    if unknown:
        raise TypeError(f"{ros_type} has no field(s) {', '.join(unknown)}; fields: {', '.join(types)}")
    values = {}
    for name, value in fields.items():
        if types[name] == "octet" and isinstance(value, int):  # `byte` (e.g. DiagnosticStatus.level): rclpy wants
            value = bytes([value])  # bytes of length 1, the DDS adapter and node logic use ints
        typecode = sequence_typecode(types[name])
        values[name] = as_sequence(value, typecode) if typecode else value
    return cls(**values)


def rclpy_qos(profile: port.QosProfile) -> Any:
    """The rclpy QoSProfile of a port profile (deadline, lifespan and liveliness stay at rmw's defaults)."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    reliability = (
        ReliabilityPolicy.RELIABLE
        if profile.reliability is port.Reliability.RELIABLE
        else ReliabilityPolicy.BEST_EFFORT
    )
    durability = (
        DurabilityPolicy.TRANSIENT_LOCAL
        if profile.durability is port.Durability.TRANSIENT_LOCAL
        else DurabilityPolicy.VOLATILE
    )
    if profile.history is port.History.KEEP_ALL:
        return QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=reliability, durability=durability)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=profile.depth, reliability=reliability, durability=durability
    )


def rcl_descriptor(fields: Mapping[str, Any]) -> Any:
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    descriptor = ParameterDescriptor(
        description=fields["description"],
        read_only=fields["read_only"],
        dynamic_typing=fields["dynamic_typing"],
        additional_constraints=fields["additional_constraints"],
    )
    if "integer_range" in fields:
        low, high = fields["integer_range"]
        descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=0)]
    if "floating_point_range" in fields:
        low, high = fields["floating_point_range"]
        descriptor.floating_point_range = [FloatingPointRange(from_value=low, to_value=high, step=0.0)]
    return descriptor


def _shutdown_errors() -> tuple[type[BaseException], ...]:
    """rclpy's "the executor or context went down" exceptions (their set differs between distros)."""
    import rclpy.executors

    names = ("ExternalShutdownException", "ShutdownException")
    return tuple(getattr(rclpy.executors, n) for n in names if hasattr(rclpy.executors, n))


# --------------------------------------------------------------------------------------------------------- entities
class RclpyPublisher:
    def __init__(self, handle: Any, msg_type: str, topic: str) -> None:
        self.handle = handle
        self.msg_type = msg_type
        self.topic = topic
        # The rclpy publisher's own bound method: no extra Python frame per message (publishing is thread-safe).
        self.publish: Callable[[Any], None] = handle.publish

    def matched_subscriptions(self) -> int:
        return int(self.handle.get_subscription_count())


class RclpySubscription:
    def __init__(self, handle: Any, msg_type: str, topic: str, node: Any) -> None:
        self.handle = handle
        self.msg_type = msg_type
        self.topic = topic
        self._node = node

    def matched_publications(self) -> int:
        count = getattr(self.handle, "get_publisher_count", None)  # newer rclpy; Humble counts on the graph
        return int(count() if count is not None else self._node.count_publishers(self.topic))


class RclpyService:
    def __init__(self, handle: Any, srv_type: str, name: str) -> None:
        self.handle = handle
        self.srv_type = srv_type
        self.name = name


class RclpyActionClient:
    """`port.ActionClient` on rclpy.action: goals are sent without waiting; cancel_goals cancels every goal sent
    before it (a goal still queued is dropped, one whose acceptance has not arrived is cancelled on arrival).

    Callable from any thread (the node's worker speaks): requests are queued and a guard condition hands them to
    the executor thread, which alone touches rclpy's action client.
    """

    def __init__(self, node: Any, action_type: str, name: str, callback_group: Any, logger: Any) -> None:
        from rclpy.action import ActionClient

        self.action_type = action_type
        self.name = name
        self._node = node
        self._class = interface_class(action_type)
        self._client = ActionClient(node, self._class, name, callback_group=callback_group)
        self._logger = logger
        self._lock = threading.Lock()
        self._generation = 0  # bumped by cancel_goals; goals of an older generation are cancelled
        self._queue: deque[tuple[str, Any, int]] = deque()  # ("goal", msg, generation) or ("cancel", None, 0)
        self._pending: dict[int, int] = {}  # id(send future) -> generation it was sent in
        self._running: dict[bytes, Any] = {}  # goal id -> ClientGoalHandle, until its result arrives
        self._guard = node.create_guard_condition(self._drain, callback_group)

    def server_is_ready(self) -> bool:
        return bool(self._client.server_is_ready())

    def send_goal(self, **fields: Any) -> None:
        goal = build_message(self._class.Goal, f"{self.action_type} goal", fields)  # bad fields fail here
        with self._lock:
            self._queue.append(("goal", goal, self._generation))
        self._guard.trigger()

    def cancel_goals(self) -> None:
        with self._lock:
            self._generation += 1
            self._queue.append(("cancel", None, 0))
        self._guard.trigger()

    def running_goals(self) -> int:
        """Goals queued, sent and not yet answered, or running (accepted, no result yet)."""
        with self._lock:
            queued = sum(1 for kind, _goal, gen in self._queue if kind == "goal" and gen == self._generation)
            return queued + len(self._pending) + len(self._running)

    def _drain(self) -> None:
        """On the executor thread: send queued goals of the current generation, cancel running ones."""
        while True:
            with self._lock:
                if not self._queue:
                    return
                kind, goal, generation = self._queue.popleft()
                stale = kind == "goal" and generation != self._generation
                handles = list(self._running.values()) if kind == "cancel" else []
                if kind == "cancel":
                    self._running.clear()
            if kind == "goal" and not stale:
                future = self._client.send_goal_async(goal)
                with self._lock:
                    self._pending[id(future)] = generation
                future.add_done_callback(self._on_goal_response)
            for handle in handles:
                handle.cancel_goal_async()

    def _on_goal_response(self, future: Any) -> None:
        with self._lock:
            generation = self._pending.pop(id(future), self._generation)
        try:
            handle = future.result()
        except Exception as error:  # the goal request failed (server gone): speech is best effort
            self._logger.warning(f"action {self.name}: goal request failed: {error}")
            return
        if handle is None or not handle.accepted:
            self._logger.warning(f"action {self.name}: goal rejected by the server", throttle_duration_sec=10.0)
            return
        key = bytes(handle.goal_id.uuid)
        with self._lock:
            cancelled = generation != self._generation
            if not cancelled:
                self._running[key] = handle
        if cancelled:
            handle.cancel_goal_async()
            return
        handle.get_result_async().add_done_callback(lambda _f, k=key: self._on_result(k))

    def _on_result(self, key: bytes) -> None:
        with self._lock:
            self._running.pop(key, None)

    def destroy(self) -> None:
        self._node.destroy_guard_condition(self._guard)
        self._client.destroy()


# --------------------------------------------------------------------------------------------------------- port
class RclpyPort:
    """`port.GraphPort` over an rclpy node (a plain Node or a LifecycleNode). `shutdown()` destroys the node."""

    def __init__(self, node: rclpy.node.Node, *, executor: Any = None) -> None:
        from rclpy.executors import SingleThreadedExecutor

        self.node = node
        self.callback_group = node.default_callback_group
        self._logger = node.get_logger()
        if not hasattr(self._logger, "warn"):  # rclpy dropped the alias after Jazzy; the port offers both
            with contextlib.suppress(AttributeError):
                self._logger.warn = self._logger.warning
        self._own_executor = executor is None
        self.executor = SingleThreadedExecutor(context=node.context) if executor is None else executor
        self.executor.add_node(node)
        self._defaults: dict[str, Any] = {}
        self._descriptors: dict[str, port.ParameterDescriptor] = {}
        self._types: dict[str, Any] = {}  # rclpy Parameter.Type of statically typed parameters
        self._declaring: set[str] = set()
        self._parameter_callbacks: list[port.ParameterCallback] = []
        self._action_clients: list[RclpyActionClient] = []
        self._stop = threading.Event()
        self._spinning = threading.Lock()
        self._spin_thread: int | None = None
        self._closed = False
        self._close_pending = False
        node.add_on_set_parameters_callback(self._on_set_parameters)

    # -- identity ------------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.node.get_name()

    @property
    def namespace(self) -> str:
        return self.node.get_namespace()

    @property
    def logger(self) -> Any:
        return self._logger

    def resolve(self, name: str) -> str:
        """The fully qualified name before remapping (rclpy applies ``-r`` remaps when it creates entities)."""
        return port.resolve_name(name, self.name, self.namespace)

    # -- entities ------------------------------------------------------------------------------------------------
    def create_publisher(self, msg_type: str, topic: str, qos: port.QosProfile) -> RclpyPublisher:
        full = self.resolve(topic)
        handle = self.node.create_publisher(interface_class(msg_type), topic, rclpy_qos(qos))
        return RclpyPublisher(handle, msg_type, getattr(handle, "topic_name", None) or full)

    def create_subscription(
        self, msg_type: str, topic: str, callback: Callable[[Any], None], qos: port.QosProfile
    ) -> RclpySubscription:
        full = self.resolve(topic)
        handle = self.node.create_subscription(
            interface_class(msg_type), topic, callback, rclpy_qos(qos), callback_group=self.callback_group
        )
        return RclpySubscription(handle, msg_type, getattr(handle, "topic_name", None) or full, self.node)

    def create_service(self, srv_type: str, name: str, handler: port.ServiceHandler) -> RclpyService:
        full = self.resolve(name)

        def call(request: Any, response: Any) -> Any:
            result = handler(request, response)
            if result is None:
                raise TypeError(f"service {full}: handler returned None instead of a {srv_type} response")
            return result

        handle = self.node.create_service(interface_class(srv_type), name, call, callback_group=self.callback_group)
        return RclpyService(handle, srv_type, getattr(handle, "service_name", None) or full)

    def create_timer(self, period_s: float, callback: Callable[[], None], *, steady: bool = False) -> Any:
        """On the node's clock (ROS time: /clock when use_sim_time is true, as rclpy's own timers), or on the
        steady clock with `steady=True`, which keeps beating while /clock pauses."""
        if not period_s > 0:
            raise ValueError(f"timer period must be positive, got {period_s}")
        clock = None
        if steady:
            from rclpy.clock import Clock, ClockType

            clock = Clock(clock_type=ClockType.STEADY_TIME)
        return self.node.create_timer(period_s, callback, callback_group=self.callback_group, clock=clock)

    def new_message(self, msg_type: str, **fields: Any) -> Any:
        return build_message(interface_class(msg_type), msg_type, fields)

    def create_action_client(self, action_type: str, name: str) -> RclpyActionClient:
        self.resolve(name)
        client = RclpyActionClient(self.node, action_type, name, self.callback_group, self._logger)
        self._action_clients.append(client)
        return client

    # -- parameters ----------------------------------------------------------------------------------------------
    def declare_parameter(self, name: str, default: Any, descriptor: port.ParameterDescriptor | None = None) -> Any:
        from rclpy.parameter import Parameter

        if name in self._defaults or self.node.has_parameter(name):
            raise RuntimeError(f"node {self.name}: parameter {name!r} is already declared")
        overrides = getattr(self.node, "_parameter_overrides", None)  # rclpy's -p/--params-file values
        value = default
        if overrides is not None and name in overrides:
            value = plain_value(overrides[name].value)
        value = widen_elements(port.check_parameter(name, value, default, descriptor), default)
        dynamic = is_dynamically_typed(default, value)
        self._declaring.add(name)
        try:
            self.node.declare_parameter(
                name,
                value,
                rcl_descriptor(descriptor_fields(default, descriptor, dynamic)),
                ignore_override=overrides is not None,
            )
        except Exception as error:  # rclpy's own checks (InvalidParameterValueException...), in one line
            if isinstance(error, (TypeError, ValueError)):
                raise
            raise ValueError(f"parameter {name!r}: {error}") from None
        finally:
            self._declaring.discard(name)
        self._defaults[name] = default
        if descriptor is not None:
            self._descriptors[name] = descriptor
        if not dynamic:
            self._types[name] = Parameter.Type.from_parameter_value(default)
        return self.get_parameter(name)

    def get_parameter(self, name: str) -> Any:
        if not self.node.has_parameter(name):
            raise KeyError(f"node {self.name}: parameter {name!r} is not declared")
        value = plain_value(self.node.get_parameter(name).value)
        if isinstance(self._defaults.get(name), tuple) and isinstance(value, list):
            value = tuple(value)
        return value

    def parameters(self) -> dict[str, Any]:
        """The parameters declared through this port, and use_sim_time."""
        return {n: self.get_parameter(n) for n in ("use_sim_time", *self._defaults) if self.node.has_parameter(n)}

    def add_parameter_callback(self, callback: port.ParameterCallback) -> None:
        self._parameter_callbacks.append(callback)

    def set_parameters(self, values: Mapping[str, Any]) -> tuple[bool, str]:
        """Change parameters in-process, as ``ros2 param set`` does (atomically; ints widen to float here)."""
        from rclpy.parameter import Parameter

        parameters = []
        for name, value in values.items():
            if not self.node.has_parameter(name):
                return False, f"parameter {name!r} is not declared"
            default = self._defaults.get(name)
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            try:
                parameters.append(Parameter(name, value=widen_elements(value, default)))
            except (TypeError, ValueError) as error:
                return False, f"parameter {name!r}: {error}"
        result = self.node.set_parameters_atomically(parameters)
        return bool(result.successful), str(result.reason)

    def _on_set_parameters(self, parameters: list[Any]) -> Any:
        from rcl_interfaces.msg import SetParametersResult

        changes: dict[str, Any] = {}
        for parameter in parameters:
            name = parameter.name
            if name in self._declaring or name not in self._defaults:
                continue  # a declaration, or a parameter rclpy owns (use_sim_time)
            descriptor = self._descriptors.get(name)
            if descriptor is not None and descriptor.read_only:
                return SetParametersResult(successful=False, reason=f"parameter {name!r} is read-only")
            expected = self._types.get(name)
            if expected is not None and parameter.type_ != expected:
                return SetParametersResult(
                    successful=False,
                    reason=f"parameter {name!r}: expected {expected.name}, got {parameter.type_.name}",
                )
            try:
                changes[name] = port.check_parameter(
                    name, plain_value(parameter.value), self._defaults[name], descriptor
                )
            except (TypeError, ValueError) as error:
                return SetParametersResult(successful=False, reason=str(error))
        if changes:
            for callback in self._parameter_callbacks:
                try:
                    accepted, reason = callback(dict(changes))
                except Exception as error:
                    self._logger.error(f"parameter callback failed on {sorted(changes)}: {error!r}")
                    return SetParametersResult(successful=False, reason=f"{type(error).__name__}: {error}")
                if not accepted:
                    return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    # -- time ----------------------------------------------------------------------------------------------------
    def now_ns(self) -> int:
        """The node clock: /clock with use_sim_time (0 before the first message), else the system clock."""
        return int(self.node.get_clock().now().nanoseconds)

    # -- executor ------------------------------------------------------------------------------------------------
    def spin_once(self, timeout_s: float = 0.1) -> None:
        """Wait up to `timeout_s` for work and run one ready callback."""
        with self._spinning:
            if self._closed:
                return
            self._spin_thread = threading.get_ident()
            try:
                self.executor.spin_once(timeout_sec=timeout_s)
            finally:
                self._spin_thread = None
                if self._close_pending:
                    self._close_locked()

    def spin(self) -> None:
        """Run callbacks until `shutdown()` (from a callback or another thread) or rclpy shuts down. Ctrl-C
        arrives as KeyboardInterrupt, as with rclpy.spin."""
        errors = _shutdown_errors()
        try:
            while not self._stop.is_set() and self.node.context.ok():
                self.spin_once(0.1)
        except errors:
            return

    def spin_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Spin until `condition()` is true; False when `timeout_s` passed first."""
        import time

        deadline = time.monotonic() + timeout_s
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop.is_set() or not self.node.context.ok():
                return condition()
            self.spin_once(min(remaining, 0.05))
        return True

    def shutdown(self) -> None:
        """Stop spinning, destroy action clients and the node. Idempotent; callable from a callback (the node is
        destroyed when that callback returns) or from another thread. The rclpy context stays up."""
        self._stop.set()
        if self._closed:
            return
        wake = getattr(self.executor, "wake", None)
        if wake is not None:
            with contextlib.suppress(Exception):  # an executor already shut down has nothing to wake
                wake()
        if self._spin_thread == threading.get_ident():
            self._close_pending = True
            return
        with self._spinning:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._closed:
            return
        self._closed = True
        for client in self._action_clients:
            client.destroy()
        self._action_clients.clear()
        self.executor.remove_node(self.node)
        if self._own_executor:
            self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
