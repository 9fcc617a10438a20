"""The graph port: the small interface the node logic is written against, once, for both adapters.

Two adapters implement it as equal citizens: rclpy (on robots) and Cyclone DDS (`adapters/dds_adapter.py`, for
tests, GPU containers without ROS, and benchmarks). This module imports nothing heavy: no rclpy, no cyclonedds,
no torch.

Message contract (both adapters):
- Types are named by their ROS name, e.g. ``"sensor_msgs/msg/Image"``; services e.g. ``"std_srvs/srv/Trigger"``.
- Callbacks receive, and ``publish`` accepts, the adapter's native message objects: rosbags dataclasses in the
  DDS adapter, rclpy message classes in the rclpy adapter. Node logic builds them only with
  ``port.new_message(type, **fields)`` (missing fields take their ROS defaults) and reads them only by attribute
  name. ``uint8[]`` fields may arrive as a numpy array (DDS) or ``array.array`` (rclpy): read them with
  ``memoryview``/``numpy.frombuffer``, never by type.
- Callbacks, timers and service handlers of one node run on one thread (like rclpy's single-threaded executor),
  so node logic needs no locks between them. Keep them thin: convert and enqueue.
"""

from __future__ import annotations

import enum
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol, runtime_checkable


class Reliability(str, enum.Enum):
    RELIABLE = "reliable"
    BEST_EFFORT = "best_effort"


class Durability(str, enum.Enum):
    VOLATILE = "volatile"
    TRANSIENT_LOCAL = "transient_local"


class History(str, enum.Enum):
    KEEP_LAST = "keep_last"
    KEEP_ALL = "keep_all"


@dataclass(frozen=True)
class QosProfile:
    """The QoS policies ROS 2 nodes negotiate on; the rest stay at rmw's defaults (deadline, lifespan and
    liveliness lease unset, automatic liveliness) in both adapters."""

    reliability: Reliability = Reliability.RELIABLE
    durability: Durability = Durability.VOLATILE
    history: History = History.KEEP_LAST
    depth: int = 10

    def __post_init__(self) -> None:
        if self.history is History.KEEP_LAST and self.depth < 1:
            raise ValueError(f"QosProfile: keep_last needs depth >= 1, got {self.depth}")

    def with_depth(self, depth: int) -> QosProfile:
        """The same profile with another keep-last depth (rclpy: ``QoSProfile(**profile, depth=n)``)."""
        return replace(self, depth=depth)


# The profiles of rmw/qos_profiles.h and rclpy.qos, mirrored exactly.
SENSOR_DATA = QosProfile(Reliability.BEST_EFFORT, Durability.VOLATILE, History.KEEP_LAST, 5)
DEFAULT = QosProfile(Reliability.RELIABLE, Durability.VOLATILE, History.KEEP_LAST, 10)
SERVICES_DEFAULT = QosProfile(Reliability.RELIABLE, Durability.VOLATILE, History.KEEP_LAST, 10)
PARAMETER_EVENTS = QosProfile(Reliability.RELIABLE, Durability.VOLATILE, History.KEEP_LAST, 1000)
# Latched topics (state, robot description): late joiners get the last message.
TRANSIENT_LOCAL_LATCHED = QosProfile(Reliability.RELIABLE, Durability.TRANSIENT_LOCAL, History.KEEP_LAST, 1)
# rclpy's TimeSource subscribes /clock with QoSProfile(depth=1, reliability=BEST_EFFORT).
CLOCK = QosProfile(Reliability.BEST_EFFORT, Durability.VOLATILE, History.KEEP_LAST, 1)

PROFILES: dict[str, QosProfile] = {
    "sensor_data": SENSOR_DATA,
    "default": DEFAULT,
    "services_default": SERVICES_DEFAULT,
    "parameter_events": PARAMETER_EVENTS,
    "transient_local": TRANSIENT_LOCAL_LATCHED,
    "clock": CLOCK,
}

CLOCK_TOPIC = "/clock"
CLOCK_TYPE = "rosgraph_msgs/msg/Clock"
DIAGNOSTICS_TOPIC = "/diagnostics"
DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"
# diagnostic_updater publishes with rclcpp::QoS(1): reliable, volatile, keep last 1.
DIAGNOSTICS_QOS = QosProfile(Reliability.RELIABLE, Durability.VOLATILE, History.KEEP_LAST, 1)


def qos_profile(name: str) -> QosProfile:
    """A named profile, for QoS chosen in parameters (``"sensor_data"``, ``"default"``, ``"transient_local"``...)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown QoS profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None


def incompatible_qos_message(topic: str, policy: str, *, subscription_side: bool = True) -> str:
    """The warning rclpy (Humble and later) logs when QoS does not match, word for word (rclpy/qos_event.py)."""
    if subscription_side:
        return (
            f"New publisher discovered on topic '{topic}', offering incompatible QoS. "
            f"No messages will be received from it. Last incompatible policy: {policy}"
        )
    return (
        f"New subscription discovered on topic '{topic}', requesting incompatible QoS. "
        f"No messages will be sent to it. Last incompatible policy: {policy}"
    )


@dataclass(frozen=True)
class ParameterDescriptor:
    """What rcl_interfaces/ParameterDescriptor says about a parameter that node logic needs here."""

    description: str = ""
    read_only: bool = False
    # Inclusive numeric bounds; None means unbounded.
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[Any, ...] = field(default_factory=tuple)


@runtime_checkable
class Logger(Protocol):
    """The subset of rclpy's RcutilsLogger the node uses; rclpy's logger satisfies it as is."""

    def debug(self, message: str, **kwargs: Any) -> Any: ...

    def info(self, message: str, **kwargs: Any) -> Any: ...

    def warning(self, message: str, **kwargs: Any) -> Any: ...

    def warn(self, message: str, **kwargs: Any) -> Any: ...

    def error(self, message: str, **kwargs: Any) -> Any: ...

    def fatal(self, message: str, **kwargs: Any) -> Any: ...


class Publisher(Protocol):
    topic: str
    msg_type: str

    def publish(self, msg: Any) -> None: ...


class Subscription(Protocol):
    topic: str
    msg_type: str


class Timer(Protocol):
    def cancel(self) -> None: ...


class Service(Protocol):
    name: str
    srv_type: str


# handler(request, response) -> response, as in rclpy.
ServiceHandler = Callable[[Any, Any], Any]

# callback({name: new value}) -> (accepted, reason), as rclpy's on-set-parameters callbacks (SetParametersResult).
# Called before the new values are stored; a rejected change leaves every parameter as it was.
ParameterCallback = Callable[[dict[str, Any]], tuple[bool, str]]


class ActionClient(Protocol):
    """The fire-and-cancel use of a ROS 2 action client that speech needs (audio_common's `say` TTS action).

    `send_goal` never blocks: the goal is sent asynchronously and its result ignored. `cancel_goals` cancels every
    goal this client sent that is still running. Only the rclpy adapter has actions; the DDS adapter raises
    `NotImplementedError` from `create_action_client` and the node falls back to topics.
    """

    name: str
    action_type: str

    def server_is_ready(self) -> bool: ...

    def send_goal(self, **fields: Any) -> None: ...

    def cancel_goals(self) -> None: ...


class GraphPort(Protocol):
    """One node on the ROS graph. Node logic uses only this; adapters implement it."""

    @property
    def name(self) -> str: ...

    @property
    def logger(self) -> Logger: ...

    def create_publisher(self, msg_type: str, topic: str, qos: QosProfile) -> Publisher: ...

    def create_subscription(
        self, msg_type: str, topic: str, callback: Callable[[Any], None], qos: QosProfile
    ) -> Subscription: ...

    def create_service(self, srv_type: str, name: str, handler: ServiceHandler) -> Service: ...

    def create_timer(self, period_s: float, callback: Callable[[], None], *, steady: bool = False) -> Timer:
        """A periodic callback on the node's clock (sim time with use_sim_time), or on the steady clock with
        `steady=True`: heartbeats and watchdogs must keep beating when /clock pauses."""
        ...

    def new_message(self, msg_type: str, **fields: Any) -> Any: ...

    def declare_parameter(self, name: str, default: Any, descriptor: ParameterDescriptor | None = None) -> Any: ...

    def get_parameter(self, name: str) -> Any: ...

    def add_parameter_callback(self, callback: ParameterCallback) -> None:
        """Called with every requested change of declared parameters (rclpy: `ros2 param set`)."""
        ...

    def create_action_client(self, action_type: str, name: str) -> ActionClient: ...

    def now_ns(self) -> int:
        """ROS time in nanoseconds: /clock when use_sim_time is true, else the system clock."""
        ...

    def spin(self) -> None: ...

    def shutdown(self) -> None: ...


def check_parameter(name: str, value: Any, default: Any, descriptor: ParameterDescriptor | None) -> Any:
    """Validate an override against the declared default's type and the descriptor; ints widen to float."""
    if default is not None and value is not None:
        if isinstance(default, bool) != isinstance(value, bool):
            raise TypeError(f"parameter {name!r}: expected {type(default).__name__}, got {value!r}")
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif isinstance(default, (list, tuple)):
            if not isinstance(value, (list, tuple)):
                raise TypeError(f"parameter {name!r}: expected a list, got {value!r}")
            value = type(default)(value)
        elif not isinstance(value, type(default)):
            raise TypeError(f"parameter {name!r}: expected {type(default).__name__}, got {value!r}")
    if descriptor is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        if descriptor.min_value is not None and value < descriptor.min_value:
            raise ValueError(f"parameter {name!r}: {value} is below its minimum {descriptor.min_value}")
        if descriptor.max_value is not None and value > descriptor.max_value:
            raise ValueError(f"parameter {name!r}: {value} is above its maximum {descriptor.max_value}")
    if descriptor is not None and descriptor.choices and value not in descriptor.choices:
        raise ValueError(f"parameter {name!r}: {value!r} is not one of {list(descriptor.choices)}")
    return value


class StreamLogger:
    """A node logger in rcutils' console format, with rclpy's ``throttle_duration_sec``/``once``/``skip_first``.

    Used by adapters without ROS. Throttling is per call site, as in rcutils. Thread-safe.
    """

    LEVELS: ClassVar[dict[str, int]] = {"DEBUG": 10, "INFO": 20, "WARN": 30, "ERROR": 40, "FATAL": 50}

    def __init__(self, name: str, stream: Any = None, level: str = "INFO") -> None:
        self.name = name
        self._stream = stream
        self._level = self.LEVELS[level.upper()]
        self._lock = threading.Lock()
        self._last: dict[tuple[str, int], float] = {}
        self._seen: set[tuple[str, int]] = set()

    def set_level(self, level: str) -> None:
        self._level = self.LEVELS[level.upper()]

    def _log(
        self,
        severity: str,
        message: str,
        throttle_duration_sec: float | None = None,
        once: bool = False,
        skip_first: bool = False,
        _depth: int = 2,
    ) -> bool:
        if self.LEVELS[severity] < self._level:
            return False
        frame = sys._getframe(_depth)
        site = (frame.f_code.co_filename, frame.f_lineno)
        with self._lock:
            first = site not in self._seen
            self._seen.add(site)
            if once and not first:
                return False
            if skip_first and first:
                return False
            if throttle_duration_sec is not None:
                now = time.monotonic()
                last = self._last.get(site)
                if last is not None and now - last < throttle_duration_sec:
                    return False
                self._last[site] = now
            stamp = time.time_ns()
            line = f"[{severity}] [{stamp // 1_000_000_000}.{stamp % 1_000_000_000:09d}] [{self.name}]: {message}\n"
            stream = self._stream if self._stream is not None else sys.stderr
            stream.write(line)
            stream.flush()
        return True

    def debug(self, message: str, **kwargs: Any) -> bool:
        return self._log("DEBUG", message, **kwargs)

    def info(self, message: str, **kwargs: Any) -> bool:
        return self._log("INFO", message, **kwargs)

    def warning(self, message: str, **kwargs: Any) -> bool:
        return self._log("WARN", message, **kwargs)

    def warn(self, message: str, **kwargs: Any) -> bool:
        return self._log("WARN", message, **kwargs)

    def error(self, message: str, **kwargs: Any) -> bool:
        return self._log("ERROR", message, **kwargs)

    def fatal(self, message: str, **kwargs: Any) -> bool:
        return self._log("FATAL", message, **kwargs)


def resolve_name(name: str, node_name: str, namespace: str = "/") -> str:
    """Expand a topic or service name as rcl does: ``~`` is the node's private namespace, relative names join the
    node namespace."""
    ns = namespace if namespace.startswith("/") else "/" + namespace
    ns = ns.rstrip("/")
    if name.startswith("~"):
        rest = name[1:].lstrip("/")
        full = f"{ns}/{node_name}" + (f"/{rest}" if rest else "")
    elif name.startswith("/"):
        full = name
    else:
        full = f"{ns}/{name}"
    if not full or "//" in full or full.endswith("/") or any(c.isspace() for c in full):
        raise ValueError(f"invalid ROS name {name!r} (resolved to {full!r}) in node {node_name!r}")
    return full
