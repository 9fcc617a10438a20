"""The graph port over Cyclone DDS, speaking the ROS 2 wire format without a ROS install.

One DDS participant per node, in the domain `ROS_DOMAIN_ID` names. Discovery follows ROS 2:
`ROS_AUTOMATIC_DISCOVERY_RANGE` (LOCALHOST / OFF / SUBNET / SYSTEM_DEFAULT; Iron and later) or, when it is unset,
`ROS_LOCALHOST_ONLY=1` (Humble) put the participant on the loopback interface, and `CYCLONEDDS_URI` is applied
on top, as rmw_cyclonedds does. Topic and type names, QoS and CDR bytes are rmw_cyclonedds' (see dds_types.py);
samples are (de)serialised by rosbags and moved through `dds_fastpath`.

Callbacks, timers and service handlers run on the thread that calls `spin()` (one per node), like rclpy's
single-threaded executor. Messages are rosbags dataclasses (see the contract in vispeak_ros/ros/port.py).
Services use rmw_cyclonedds' request/reply topics and request header; interop with other rmw implementations is
unverified. Every service whose request is empty is also offered as a plain std_msgs/Empty topic of the same name,
for DDS-only users.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from cyclonedds.core import GuardCondition, Listener, Policy, Qos, ReadCondition, WaitSet
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.internal import dds_infinity
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic

from vispeak_ros.ros import port
from vispeak_ros.ros.adapters.dds_fastpath import ANY_SAMPLE, CdrReader, CdrWriter, pad_cdr
from vispeak_ros.ros.adapters.dds_types import (
    DdsTypes,
    dds_topic_name,
    register_service,
    service_topic_names,
)
from vispeak_ros.ros.isolation import MAX_DOMAIN_ID, loopback_config_xml

DISCOVERY_RANGES = ("SUBNET", "LOCALHOST", "OFF", "SYSTEM_DEFAULT")
# dds_qos_policy_id_t (Cyclone dds/ddsc/dds_public_qos_provider / dds_public_status) -> rclpy's QoSPolicyKind name.
POLICY_NAMES = {2: "DURABILITY", 4: "DEADLINE", 8: "LIVELINESS", 11: "RELIABILITY", 13: "HISTORY", 21: "LIFESPAN"}
DDS_LENGTH_UNLIMITED = -1
# rmw_cyclonedds' rmw_send_response waits this long for the client's reply reader to be matched.
REPLY_MATCH_WAIT_S = 0.1


# --------------------------------------------------------------------------------------------------------- config
def discovery_config(env: Mapping[str, str] | None = None) -> tuple[int, str | None, str]:
    """(domain_id, Cyclone config or None for Cyclone's own CYCLONEDDS_URI handling, discovery range) from env."""
    env = os.environ if env is None else env
    raw_domain = env.get("ROS_DOMAIN_ID", "").strip()
    try:
        domain_id = int(raw_domain) if raw_domain else 0
    except ValueError:
        raise ValueError(f"ROS_DOMAIN_ID={raw_domain!r} is not an integer") from None
    if not 0 <= domain_id <= MAX_DOMAIN_ID:
        raise ValueError(f"ROS_DOMAIN_ID={domain_id} is outside 0-{MAX_DOMAIN_ID} (ROS 2's range on Linux)")
    discovery = env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").strip().upper()
    if not discovery:
        discovery = "LOCALHOST" if env.get("ROS_LOCALHOST_ONLY", "").strip() == "1" else "SUBNET"
    if discovery not in DISCOVERY_RANGES:
        raise ValueError(f"ROS_AUTOMATIC_DISCOVERY_RANGE={discovery!r} is not one of {', '.join(DISCOVERY_RANGES)}")
    user_uri = env.get("CYCLONEDDS_URI", "").strip()
    if discovery in ("LOCALHOST", "OFF") and not _selects_interface(user_uri):
        config = loopback_config_xml(peers=discovery == "LOCALHOST")
        if user_uri:
            config = f"{config},{user_uri}"  # the user's configuration is applied on top, as in rmw_cyclonedds
        return domain_id, config, discovery
    # A CYCLONEDDS_URI that picks its own interfaces wins (Cyclone refuses an interface selected twice).
    return domain_id, (user_uri or None), discovery


def _selects_interface(uri: str) -> bool:
    """Whether a CYCLONEDDS_URI (comma-separated XML fragments and file URIs) chooses network interfaces."""
    for item in (part.strip() for part in uri.split(",")):
        if not item:
            continue
        if item.startswith("<"):
            text = item
        else:
            path = item[len("file://") :] if item.startswith("file://") else item
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError:
                continue  # Cyclone reports unreadable files itself
        if "NetworkInterface" in text:
            return True
    return False


class _Domains:
    """Cyclone domains are per process: create each once with its configuration, share it between nodes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._domains: dict[int, tuple[Any, str | None, int]] = {}

    def acquire(self, domain_id: int, config: str | None) -> None:
        with self._lock:
            entry = self._domains.get(domain_id)
            if entry is not None:
                domain, existing, count = entry
                if existing != config:
                    raise RuntimeError(
                        f"DDS domain {domain_id} already runs in this process with another configuration; "
                        "all nodes of a process must share ROS_DOMAIN_ID's discovery settings"
                    )
                self._domains[domain_id] = (domain, existing, count + 1)
                return
            domain = Domain(domain_id, config) if config is not None else None
            self._domains[domain_id] = (domain, config, 1)

    def release(self, domain_id: int) -> None:
        with self._lock:
            domain, config, count = self._domains[domain_id]
            if count > 1:
                self._domains[domain_id] = (domain, config, count - 1)
                return
            del self._domains[domain_id]
        if domain is not None:
            domain.__del__()


_DOMAINS = _Domains()


def dds_qos(profile: port.QosProfile, user_data: bytes | None = None) -> Qos:
    """rmw_cyclonedds' create_readwrite_qos for a ROS profile (reader and writer alike)."""
    if profile.history is port.History.KEEP_ALL:
        history = Policy.History.KeepAll
    else:
        history = Policy.History.KeepLast(profile.depth)
    policies: list[Any] = [
        Policy.WriterDataLifecycle(autodispose=False),
        history,
        (
            Policy.Reliability.Reliable(max_blocking_time=dds_infinity)
            if profile.reliability is port.Reliability.RELIABLE
            else Policy.Reliability.BestEffort
        ),
        Policy.Liveliness.Automatic(lease_duration=dds_infinity),
    ]
    if profile.durability is port.Durability.TRANSIENT_LOCAL:
        policies.append(Policy.Durability.TransientLocal)
        # Cyclone keeps historical data per the durability service policy; rmw sets it from the history.
        policies.append(
            Policy.DurabilityService(
                cleanup_delay=0,
                history=history,
                max_samples=DDS_LENGTH_UNLIMITED,
                max_instances=DDS_LENGTH_UNLIMITED,
                max_samples_per_instance=DDS_LENGTH_UNLIMITED,
            )
        )
    else:
        policies.append(Policy.Durability.Volatile)
    if user_data is not None:
        policies.append(Policy.Userdata(data=user_data))
    return Qos(*policies)


def policy_name(policy_id: int) -> str:
    return POLICY_NAMES.get(policy_id, "INVALID")


def _user_data_value(qos: Any, key: str) -> str | None:
    """`key=value;` from an endpoint's user data, as rmw_cyclonedds' get_user_data_key reads it."""
    try:
        data = qos[Policy.Userdata].data
    except (KeyError, TypeError, AttributeError):
        return None
    for item in data.rstrip(b"\0").decode("utf-8", "replace").split(";"):
        name, sep, value = item.partition("=")
        if sep and name == key:
            return value
    return None


# --------------------------------------------------------------------------------------------------------- entities
class DdsPublisher:
    def __init__(self, node: DdsNode, msg_type: str, topic: str, qos: port.QosProfile, writer: Any) -> None:
        self.node = node
        self.msg_type = msg_type
        self.topic = topic
        self.qos = qos
        self.writer = writer
        self._cdr = CdrWriter(writer)

    def publish(self, msg: Any) -> None:
        self._cdr.write(self.node.types.serialize(msg, self.msg_type))

    def publish_cdr(self, cdr: bytes) -> None:
        """Publish an already serialised XCDR1 sample, e.g. replayed from a bag (padded to 4 bytes here if the
        bag stored it unpadded)."""
        self._cdr.write(pad_cdr(cdr))

    def matched_subscriptions(self) -> int:
        return len(self.writer.get_matched_subscriptions())


class DdsSubscription:
    def __init__(
        self,
        node: DdsNode,
        msg_type: str,
        topic: str,
        qos: port.QosProfile,
        reader: Any,
        callback: Callable[[Any], None],
        raw: bool,
    ) -> None:
        self.node = node
        self.msg_type = msg_type
        self.topic = topic
        self.qos = qos
        self.reader = reader
        self.callback = callback
        self.raw = raw
        self.condition = ReadCondition(reader, ANY_SAMPLE)
        self._cdr = CdrReader(reader)

    def dispatch(self) -> int:
        samples = self._cdr.take(max(self.qos.depth, 16))
        for data, info in samples:
            if self.raw:
                self.callback((data, info))
            else:
                self.callback(self.node.types.deserialize(data, self.msg_type))
        return len(samples)

    def matched_publications(self) -> int:
        return len(self.reader.get_matched_publications())


class DdsTimer:
    def __init__(self, period_s: float, callback: Callable[[], None], now_ns: int | None, sim: bool) -> None:
        if period_s <= 0:
            raise ValueError(f"timer period must be positive, got {period_s}")
        self.period_ns = round(period_s * 1e9)
        self.callback = callback
        self.sim = sim
        # A sim-time timer created before the first /clock starts counting at the first /clock.
        self.next_ns = None if now_ns is None else now_ns + self.period_ns
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class DdsService:
    def __init__(self, node: DdsNode, srv_type: str, name: str, handler: port.ServiceHandler) -> None:
        self.node = node
        self.srv_type = srv_type
        self.name = name
        self.handler = handler
        self.request_type, self.response_type = register_service(node.types.typestore, srv_type)
        request_topic, reply_topic = service_topic_names(name)
        self.service_id = node.next_client_service_id()
        qos = dds_qos(port.SERVICES_DEFAULT, user_data=f"serviceid={self.service_id};".encode())
        self.reader = DataReader(
            node.participant, node.topic(request_topic, node.types.service_idl_class(self.request_type)), qos
        )
        self.writer = DataWriter(
            node.participant, node.topic(reply_topic, node.types.service_idl_class(self.response_type)), qos
        )
        self.condition = ReadCondition(self.reader, ANY_SAMPLE)
        self._requests = CdrReader(self.reader)
        self._replies = CdrWriter(self.writer)
        self.alias: DdsSubscription | None = None
        request_fields = [n for n, _ in node.types.fields(self.request_type)]
        if request_fields == ["structure_needs_at_least_one_member"]:
            self.alias = node.create_subscription("std_msgs/msg/Empty", name, self._on_alias, port.DEFAULT)

    def _call(self, request: Any) -> Any:
        response = self.handler(request, self.node.new_message(self.response_type))
        if response is None:
            raise TypeError(f"service {self.name}: handler returned None instead of a {self.response_type}")
        return response

    def _on_alias(self, _msg: Any) -> None:
        response = self._call(self.node.new_message(self.request_type))
        summary = ", ".join(f"{n}={getattr(response, n)!r}" for n, _ in self.node.types.fields(self.response_type))
        self.node.logger.info(f"{self.name} called through its std_msgs/Empty topic: {summary}")

    def dispatch(self) -> int:
        samples = self._requests.take(16)
        for data, info in samples:
            guid, seq, request = self.node.types.deserialize_service(data, self.request_type)
            response = self._call(request)
            if self._client_reader_matched(info.publication_handle):
                self._replies.write(self.node.types.serialize_service(response, self.response_type, guid, seq))
            else:
                self.node.logger.warn(f"service {self.name}: client's reply reader not matched; reply dropped")
        return len(samples)

    def _client_reader_matched(self, request_writer: int) -> bool:
        """rmw_cyclonedds' check_for_response_reader: wait briefly until the client's reply reader is matched."""
        endpoint = self.reader.get_matched_publication_data(request_writer)
        if endpoint is None:
            return False
        client_id = _user_data_value(endpoint.qos, "clientid")
        if client_id is None:
            return True  # a client without an id (older rmw): assume all is well, as rmw does
        deadline = time.monotonic() + REPLY_MATCH_WAIT_S
        while True:
            for handle in self.writer.get_matched_subscriptions():
                reader = self.writer.get_matched_subscription_data(handle)
                if reader is not None and _user_data_value(reader.qos, "clientid") == client_id:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


class DdsServiceClient:
    """A service client on rmw_cyclonedds' request/reply topics (for tests and tools; node logic has no clients)."""

    def __init__(self, node: DdsNode, srv_type: str, name: str) -> None:
        self.node = node
        self.name = port.resolve_name(name, node.name, node.namespace)
        self.request_type, self.response_type = register_service(node.types.typestore, srv_type)
        request_topic, reply_topic = service_topic_names(self.name)
        self.client_id = node.next_client_service_id()
        qos = dds_qos(port.SERVICES_DEFAULT, user_data=f"clientid={self.client_id};".encode())
        self.writer = DataWriter(
            node.participant, node.topic(request_topic, node.types.service_idl_class(self.request_type)), qos
        )
        self.reader = DataReader(
            node.participant, node.topic(reply_topic, node.types.service_idl_class(self.response_type)), qos
        )
        self.guid = self.writer.get_instance_handle() & 0xFFFF_FFFF_FFFF_FFFF  # the binding returns it signed
        self._sequence = itertools.count(1)
        self._requests = CdrWriter(self.writer)
        self._replies = CdrReader(self.reader)
        self._waitset = WaitSet(node.participant)
        self._waitset.attach(ReadCondition(self.reader, ANY_SAMPLE))

    def service_is_ready(self) -> bool:
        """rmw_cyclonedds' check_for_service_reader_writer: a request reader and a reply writer of one service."""
        ids = set()
        for handle in self.writer.get_matched_subscriptions():
            endpoint = self.writer.get_matched_subscription_data(handle)
            if endpoint is not None:
                ids.add(_user_data_value(endpoint.qos, "serviceid"))
        for handle in self.reader.get_matched_publications():
            endpoint = self.reader.get_matched_publication_data(handle)
            if endpoint is not None and _user_data_value(endpoint.qos, "serviceid") in ids:
                return True
        return False

    def wait_for_service(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self.service_is_ready():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def call(self, request: Any | None = None, timeout_s: float = 5.0) -> Any:
        """Send a request and block for its reply; TimeoutError when none comes in time."""
        request = self.node.new_message(self.request_type) if request is None else request
        seq = next(self._sequence)
        self._requests.write(self.node.types.serialize_service(request, self.request_type, self.guid, seq))
        deadline = time.monotonic() + timeout_s
        while True:
            for data, _info in self._replies.take(16):
                guid, reply_seq, response = self.node.types.deserialize_service(data, self.response_type)
                if guid == self.guid and reply_seq == seq:
                    return response
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"service {self.name}: no reply to request {seq} within {timeout_s} s")
            self._waitset.wait(int(min(remaining, 0.1) * 1e9))


# --------------------------------------------------------------------------------------------------------- node
def build_typestore(distro: str = "humble", audio_flavour: str | None = None) -> Any:
    """Standard ROS types of `distro`, ours (msg/), and optionally one audio_common_msgs flavour."""
    from vispeak_ros import interfaces

    store = interfaces.typestore(distro)
    if audio_flavour is not None:
        from vispeak_ros.ros import audio_common

        audio_common.register(store, audio_flavour)
    return store


def _load_params_file(path: str, node_name: str, namespace: str) -> dict[str, Any]:
    """Parameters for this node from a ROS 2 params YAML (`<node or /**>: ros__parameters: {...}`)."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        document = yaml.safe_load(handle) or {}
    full = f"{namespace.rstrip('/')}/{node_name}"
    params: dict[str, Any] = {}
    for key in ("/**", f"/**/{node_name}", node_name, full, full.lstrip("/")):
        section = document.get(key)
        if isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict):
            params.update(_flatten(section["ros__parameters"]))
    return params


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


class DdsNode:
    """A ROS 2 node over Cyclone DDS implementing `port.GraphPort`."""

    def __init__(
        self,
        name: str,
        *,
        namespace: str = "/",
        parameter_overrides: Mapping[str, Any] | None = None,
        params_file: str | None = None,
        typestore: Any = None,
        env: Mapping[str, str] | None = None,
        log_stream: Any = None,
        remappings: Mapping[str, str] | None = None,
    ) -> None:
        self._name = name
        self.namespace = namespace if namespace.startswith("/") else "/" + namespace
        # `--ros-args -r from:=to`: both sides resolved against this node, as rcl does.
        self.remappings = {
            port.resolve_name(old, name, self.namespace): port.resolve_name(new, name, self.namespace)
            for old, new in (remappings or {}).items()
        }
        self.types = DdsTypes(typestore if typestore is not None else build_typestore())
        self._logger = port.StreamLogger(name, stream=log_stream)
        self.domain_id, config, self.discovery_range = discovery_config(env)
        _DOMAINS.acquire(self.domain_id, config)
        try:
            self.participant = DomainParticipant(self.domain_id, qos=Qos(Policy.Userdata(data=b"enclave=/;")))
        except Exception:
            _DOMAINS.release(self.domain_id)
            raise
        self._lock = threading.RLock()
        self._topics: dict[str, tuple[Any, str]] = {}
        self._subscriptions: list[DdsSubscription] = []
        self._services: list[DdsService] = []
        self._timers: list[DdsTimer] = []
        self._publishers: list[DdsPublisher] = []
        self._waitset = WaitSet(self.participant)
        self._wake = GuardCondition(self.participant)
        self._waitset.attach(self._wake)
        self._stop = threading.Event()
        self._closed = False
        self._close_pending = False
        self._spin_thread: int | None = None
        self._spinning = threading.Lock()
        self._cs_counter = itertools.count(1)
        self.qos_events: list[str] = []  # the incompatible-QoS warnings logged, for tools and tests
        overrides = dict(_load_params_file(params_file, name, self.namespace)) if params_file else {}
        overrides.update(parameter_overrides or {})
        self._overrides = overrides
        self._parameters: dict[str, Any] = {}
        self._descriptors: dict[str, port.ParameterDescriptor] = {}
        self._parameter_callbacks: list[port.ParameterCallback] = []
        self._sim_time_ns: int | None = None
        self._use_sim_time = bool(self.declare_parameter("use_sim_time", False))
        if self._use_sim_time:
            self.create_subscription(port.CLOCK_TYPE, port.CLOCK_TOPIC, self._on_clock, port.CLOCK)

    # -- identity ------------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def logger(self) -> port.StreamLogger:
        return self._logger

    def resolve(self, name: str) -> str:
        full = port.resolve_name(name, self._name, self.namespace)
        return self.remappings.get(full, full)

    def next_client_service_id(self) -> str:
        """A unique client/service id formatted as rmw_cyclonedds does: participant GUID prefix + counter."""
        prefix = self.participant.get_guid().bytes[:12]
        raw = prefix + next(self._cs_counter).to_bytes(4, "big")
        return f"{raw[0]:02x}" + "".join(f".{b:x}" for b in raw[1:])

    # -- entities ------------------------------------------------------------------------------------------------
    def topic(self, dds_name: str, idl_class: type) -> Any:
        """The participant's Topic for a DDS topic name, created once; one type per topic."""
        with self._lock:
            entry = self._topics.get(dds_name)
            if entry is not None:
                topic, typename = entry
                if typename != idl_class.__idl_typename__:
                    raise TypeError(
                        f"DDS topic {dds_name} is already used with type {typename}, not {idl_class.__idl_typename__}"
                    )
                return topic
            topic = Topic(self.participant, dds_name, idl_class)
            self._topics[dds_name] = (topic, idl_class.__idl_typename__)
            return topic

    def create_publisher(self, msg_type: str, topic: str, qos: port.QosProfile) -> DdsPublisher:
        full = self.resolve(topic)
        listener = Listener(on_offered_incompatible_qos=lambda _w, status: self._incompatible(topic, status, False))
        dds_topic = self.topic(dds_topic_name(full), self.types.idl_class(msg_type))
        writer = DataWriter(self.participant, dds_topic, dds_qos(qos), listener=listener)
        publisher = DdsPublisher(self, msg_type, full, qos, writer)
        with self._lock:
            self._publishers.append(publisher)
        return publisher

    def create_subscription(
        self,
        msg_type: str,
        topic: str,
        callback: Callable[[Any], None],
        qos: port.QosProfile,
        *,
        raw: bool = False,
    ) -> DdsSubscription:
        """Subscribe; `raw=True` hands the callback `(cdr_bytes, SampleInfo)` instead of a message."""
        full = self.resolve(topic)
        listener = Listener(on_requested_incompatible_qos=lambda _r, status: self._incompatible(topic, status, True))
        dds_topic = self.topic(dds_topic_name(full), self.types.idl_class(msg_type))
        reader = DataReader(self.participant, dds_topic, dds_qos(qos), listener=listener)
        subscription = DdsSubscription(self, msg_type, full, qos, reader, callback, raw)
        with self._lock:
            self._subscriptions.append(subscription)
            self._waitset.attach(subscription.condition)
        self._wake.set(True)
        return subscription

    def create_service(self, srv_type: str, name: str, handler: port.ServiceHandler) -> DdsService:
        service = DdsService(self, srv_type, self.resolve(name), handler)
        with self._lock:
            self._services.append(service)
            self._waitset.attach(service.condition)
        self._wake.set(True)
        return service

    def create_client(self, srv_type: str, name: str) -> DdsServiceClient:
        return DdsServiceClient(self, srv_type, name)

    def create_timer(self, period_s: float, callback: Callable[[], None], *, steady: bool = False) -> DdsTimer:
        sim = self._use_sim_time and not steady
        timer = DdsTimer(period_s, callback, self._timer_now(sim), sim)
        with self._lock:
            self._timers.append(timer)
        self._wake.set(True)
        return timer

    def new_message(self, msg_type: str, **fields: Any) -> Any:
        return self.types.new_message(msg_type, **fields)

    # -- parameters ----------------------------------------------------------------------------------------------
    def declare_parameter(self, name: str, default: Any, descriptor: port.ParameterDescriptor | None = None) -> Any:
        with self._lock:
            if name in self._parameters:
                raise RuntimeError(f"node {self._name}: parameter {name!r} is already declared")
            value = self._overrides.get(name, default)
            value = port.check_parameter(name, value, default, descriptor)
            self._parameters[name] = value
            if descriptor is not None:
                self._descriptors[name] = descriptor
            return value

    def get_parameter(self, name: str) -> Any:
        try:
            return self._parameters[name]
        except KeyError:
            raise KeyError(f"node {self._name}: parameter {name!r} is not declared") from None

    def parameters(self) -> dict[str, Any]:
        return dict(self._parameters)

    def add_parameter_callback(self, callback: port.ParameterCallback) -> None:
        self._parameter_callbacks.append(callback)

    def set_parameters(self, values: Mapping[str, Any]) -> tuple[bool, str]:
        """Change declared parameters at run time, as `ros2 param set` does on a ROS node (this adapter has no
        parameter services: tools and tests call it in-process). Every value is checked against its declaration,
        then every callback must accept; otherwise nothing changes."""
        with self._lock:
            checked: dict[str, Any] = {}
            for name, value in values.items():
                if name not in self._parameters:
                    return False, f"parameter {name!r} is not declared"
                descriptor = self._descriptors.get(name)
                if descriptor is not None and descriptor.read_only:
                    return False, f"parameter {name!r} is read-only"
                try:
                    checked[name] = port.check_parameter(name, value, self._parameters[name], descriptor)
                except (TypeError, ValueError) as error:
                    return False, str(error)
            for callback in self._parameter_callbacks:
                accepted, reason = callback(dict(checked))
                if not accepted:
                    return False, reason
            self._parameters.update(checked)
            return True, ""

    def create_action_client(self, action_type: str, name: str) -> port.ActionClient:
        raise NotImplementedError(
            f"node {self._name}: ROS 2 actions ({action_type} {name}) need the rclpy adapter; over plain DDS use topics"
        )

    # -- time ----------------------------------------------------------------------------------------------------
    def _on_clock(self, msg: Any) -> None:
        now = msg.clock.sec * 1_000_000_000 + msg.clock.nanosec
        if self._sim_time_ns is not None and now < self._sim_time_ns:
            # Time jumped back (a replay restarted): as rcl's timers do, sim timers count from the new time;
            # otherwise they would wait until /clock caught up with where it was.
            with self._lock:
                for timer in self._timers:
                    if timer.sim and timer.next_ns is not None:
                        timer.next_ns = now + timer.period_ns
        self._sim_time_ns = now

    def now_ns(self) -> int:
        """ROS time: the last /clock (0 before the first, as rclpy) with use_sim_time, else the system clock."""
        if self._use_sim_time:
            return self._sim_time_ns or 0
        return time.time_ns()

    def _timer_now(self, sim: bool) -> int | None:
        return self._sim_time_ns if sim else time.monotonic_ns()

    # -- QoS events ----------------------------------------------------------------------------------------------
    def _incompatible(self, topic: str, status: Any, subscription_side: bool) -> None:
        message = port.incompatible_qos_message(
            topic, policy_name(status.last_policy_id), subscription_side=subscription_side
        )
        self.qos_events.append(message)
        self._logger.warn(message)

    # -- executor ------------------------------------------------------------------------------------------------
    def spin_once(self, timeout_s: float = 0.1) -> int:
        """Wait up to `timeout_s` for work, run what is ready; returns how many callbacks ran."""
        with self._spinning:
            if self._closed:
                return 0
            self._spin_thread = threading.get_ident()
            try:
                return self._spin_once(timeout_s)
            finally:
                self._spin_thread = None
                if self._close_pending:
                    self._close_locked()

    def _spin_once(self, timeout_s: float) -> int:
        with self._lock:
            timers = [t for t in self._timers if not t.cancelled]
        wait_s = timeout_s
        for timer in timers:
            if not timer.sim and timer.next_ns is not None:
                wait_s = min(wait_s, max(0.0, (timer.next_ns - time.monotonic_ns()) / 1e9))
        if wait_s > 0:
            self._waitset.wait(int(wait_s * 1e9))
        self._wake.take()
        ran = 0
        with self._lock:
            subscriptions = list(self._subscriptions)
            services = list(self._services)
        for subscription in subscriptions:
            ran += subscription.dispatch()
        for service in services:
            ran += service.dispatch()
        for timer in timers:
            now = self._timer_now(timer.sim)
            if now is None or timer.cancelled:
                continue
            if timer.next_ns is None:
                timer.next_ns = now + timer.period_ns
            if now >= timer.next_ns:
                # A late timer fires once and realigns to its period, as rcl's timers do.
                missed = (now - timer.next_ns) // timer.period_ns
                timer.next_ns += (missed + 1) * timer.period_ns
                timer.callback()
                ran += 1
        return ran

    def spin(self) -> None:
        """Run callbacks until `shutdown()` (from a callback or another thread) or Ctrl-C."""
        while not self._stop.is_set():
            self.spin_once(0.1)

    def spin_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Spin until `condition()` is true; False when `timeout_s` passed first."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop.is_set():
                return condition()
            self.spin_once(min(remaining, 0.05))
        return True

    def shutdown(self) -> None:
        """Stop spinning and delete the participant (and with it every endpoint). Idempotent; callable from a
        callback (the node closes when that callback returns) or from another thread."""
        self._stop.set()
        if self._closed:
            return
        self._wake.set(True)
        if self._spin_thread == threading.get_ident():
            self._close_pending = True
            return
        with self._spinning:  # wait for a spin in progress to return
            self._close_locked()

    def _close_locked(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.participant.__del__()  # dds_delete: the C side deletes children; their Python objects become inert
        _DOMAINS.release(self.domain_id)

    def __enter__(self) -> DdsNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
