"""Paced replay: publish a recording's topics in real time over Cyclone DDS into a running vispeak node, and record
what the node publishes.

Written against topics only, like `ros2 bag play` plus `ros2 bag record`:

- **Publisher**: every input topic of the recording (except our own output topics, when replaying an output
  recording) goes out under its recorded name and type, with the bytes as recorded (ROS 2 wire format: the CDR a
  rosbag2 recording stores is what rmw sends), at the recorded spacing divided by `rate`. QoS: reliable, volatile,
  depth 10, as `ros2 bag play` offers by default (a SensorDataQoS subscriber matches it); ros-drivers `AudioInfo`
  transient local, as audio_capture latches it. `remap` renames topics on the way out (`--remap FROM:=TO`), for a
  node that listens elsewhere than the robot recorded. `/clock` (rosgraph_msgs/Clock) carries the recording's time at
  most every 10 ms, for a node started with use_sim_time.
- **Recorder**: `<namespace>/vispeak/feedback`, `/events` and `/informative`, subscribed best effort with a deep
  history (a best-effort reader matches reliable and best-effort writers alike). Outputs are stamped in stream time
  by the node, so they are recorded at their header stamps.

Before publishing it waits (`wait_for_node_s`) for a subscriber on the camera topic, then publishes, then keeps
recording `tail_s` seconds for the last answers, with `/clock` running on so that a node on sim time closes its
last seconds. **Following the node** (`follow=N`): the data of second k goes out only once the node has published
its informative score of second k - N, so a node slower than `rate` drops nothing (its sensor readers keep the
last 5 messages; its segment queue is bounded) and the run gives what a fast replay gives; the tail then ends as
soon as the node has scored the last second. **Network**: loopback only by default, in your ROS_DOMAIN_ID
(the node must run on this host with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST or ROS_LOCALHOST_ONLY=1, as
vispeak's own DDS node does); `network=True` uses your ROS 2 environment as it is (ROS_DOMAIN_ID, discovery range,
CYCLONEDDS_URI) and so reaches a robot's graph.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vispeak_ros.core.clock import NS_PER_S
from vispeak_ros.tools.output_bag import EVENTS_TOPIC, FEEDBACK_TOPIC, INFORMATIVE_TOPIC

OUTPUT_TYPES = {
    FEEDBACK_TOPIC: "vispeak_ros/msg/Feedback",
    EVENTS_TOPIC: "vispeak_ros/msg/Event",
    INFORMATIVE_TOPIC: "vispeak_ros/msg/Informative",
}
CLOCK_PERIOD_NS = 10_000_000
AUDIO_INFO_TYPE = "audio_common_msgs/msg/AudioInfo"


def paced_env(base: Mapping[str, str] | None = None, network: bool = False) -> dict[str, str]:
    """The environment the replay's DDS participant uses: `base` as is with `network`, else loopback only (the
    same Cyclone configuration vispeak's isolation uses) in `base`'s ROS_DOMAIN_ID."""
    from vispeak_ros.ros.isolation import loopback_config_xml

    env = dict(os.environ if base is None else base)
    if network:
        return env
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_LOCALHOST_ONLY"] = "1"
    env["CYCLONEDDS_URI"] = loopback_config_xml()
    return env


def _prefixed(namespace: str, topic: str) -> str:
    namespace = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return namespace + topic


class PacedPlayer:
    """Publishes a recording's messages at their recorded pace and records the node's outputs (see module doc)."""

    def __init__(
        self,
        recording: Any,
        store: Any,
        env: Mapping[str, str],
        namespace: str = "/",
        node_name: str = "vispeak_replay",
        remap: Mapping[str, str] | None = None,
    ) -> None:
        from vispeak_ros.ros import port
        from vispeak_ros.ros.adapters.dds_adapter import DdsNode

        self.recording = recording
        self.store = store
        self.node = DdsNode(node_name, typestore=store, env=env)
        self.outputs = {_prefixed(namespace, topic): (topic, msgtype) for topic, msgtype in OUTPUT_TYPES.items()}
        self.publishers: dict[str, Any] = {}
        for connection in recording.connections:
            if connection.topic in self.outputs or connection.topic in OUTPUT_TYPES:
                continue  # an output recording of ours: its answers are not the node's input
            qos = port.TRANSIENT_LOCAL_LATCHED if connection.msgtype == AUDIO_INFO_TYPE else port.DEFAULT
            name = (remap or {}).get(connection.topic, connection.topic)
            self.publishers[connection.topic] = self.node.create_publisher(connection.msgtype, name, qos)
        self.clock = self.node.create_publisher(port.CLOCK_TYPE, port.CLOCK_TOPIC, port.DEFAULT)
        self._received: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        record_qos = port.QosProfile(port.Reliability.BEST_EFFORT, port.Durability.VOLATILE, port.History.KEEP_LAST,
                                     1000)  # fmt: skip
        for full, (_, msgtype) in self.outputs.items():
            self.node.create_subscription(msgtype, full, lambda sample, t=full: self._on_output(t, sample),
                                          record_qos, raw=True)  # fmt: skip
        self._spinner = threading.Thread(target=self.node.spin, name="vispeak-replay-dds", daemon=True)
        self._spinner.start()

    def _on_output(self, topic: str, sample: tuple[bytes, Any]) -> None:
        with self._lock:
            self._received.append((topic, bytes(sample[0])))

    def take_outputs(self) -> list[tuple[str, str, bytes]]:
        """(our topic name, type, CDR) of what the node published since the last call, in arrival order."""
        with self._lock:
            received, self._received = self._received, []
        return [(self.outputs[full][0], self.outputs[full][1], cdr) for full, cdr in received]

    def wait_for_subscriber(self, topic: str, timeout_s: float, node_alive: Callable[[], bool] | None = None) -> bool:
        deadline = time.monotonic() + timeout_s
        publisher = self.publishers[topic]
        while publisher.matched_subscriptions() == 0:
            if time.monotonic() > deadline or (node_alive is not None and not node_alive()):
                return False
            time.sleep(0.05)
        return True

    def publish(self, topic: str, record_ns: int, raw: bytes | memoryview) -> None:
        from vispeak_ros.ros.adapters.dds_types import pad4

        publisher = self.publishers.get(topic)
        if publisher is not None:
            publisher.publish_cdr(pad4(bytes(raw)))

    def publish_clock(self, stamp_ns: int) -> None:
        sec, nanosec = divmod(stamp_ns, NS_PER_S)
        time_type = self.store.types["builtin_interfaces/msg/Time"]
        self.clock.publish(self.store.types["rosgraph_msgs/msg/Clock"](clock=time_type(sec, nanosec)))

    def close(self) -> None:
        self.node.shutdown()
        self._spinner.join(2.0)


def _stamp_ns(msg: Any) -> int:
    return int(msg.header.stamp.sec) * NS_PER_S + int(msg.header.stamp.nanosec)


def run_paced(
    source: Any,
    bag_path: Path,
    collector: Any,
    progress: Any,
    camera_topic: str | None = None,
    audio_topic: str | None = None,
    *,
    rate: float = 1.0,
    wait_for_node_s: float = 10.0,
    tail_s: float = 3.0,
    network: bool = False,
    namespace: str = "/",
    env: Mapping[str, str] | None = None,
    remap: Mapping[str, str] | None = None,
    follow: int | None = None,
    follow_timeout_s: float = 30.0,
    node_alive: Callable[[], bool] | None = None,
) -> Any:
    """Play `source` into a running node and record its outputs (a `replay.RunFigures`). `follow`: see the module
    doc; `node_alive` (when this process started the node) ends the waits early once the node has exited."""
    from vispeak_ros.tools.bag_source import Recording, find_topics, with_our_types
    from vispeak_ros.tools.output_bag import OutputBag

    if not isinstance(source, Recording):
        raise ValueError(f"{source.path}: paced mode plays recordings (rosbag2 or .mcap); replay a video in fast mode")
    if not 0.01 <= rate <= 100.0:
        raise ValueError(f"--rate must be in [0.01, 100], got {rate}")
    if follow is not None and follow < 0:
        raise ValueError(f"--follow must be 0 or more seconds, got {follow}")
    topics = find_topics(source.connections, source.path, camera_topic, audio_topic)
    store = with_our_types(source.typestore)
    remap = dict(remap or {})
    unknown = sorted(set(remap) - {c.topic for c in source.connections})
    if unknown:
        raise ValueError(f"{source.path}: --remap names topics the recording lacks: {', '.join(unknown)}")
    player = PacedPlayer(source, store, paced_env(env, network), namespace, remap=remap)
    skipped: list[str] = []
    first_ns: int | None = None
    last_ns = 0
    try:
        if not player.wait_for_subscriber(topics.camera, wait_for_node_s, node_alive):
            where = "on this host (loopback only; --network to use your ROS 2 network)" if not network else ""
            raise RuntimeError(
                f"no subscriber on {topics.camera} within {wait_for_node_s:g} s: is vispeak-node running {where}"
                f"in ROS_DOMAIN_ID {player.node.domain_id}?"
            )
        definitions = {c.topic: c.msgdef if c.msgdef_format == "ros2msg" else "" for c in source.connections}
        with OutputBag(bag_path, typestore=store, single_file=True) as bag:
            scored = [-1]  # the highest segment index the node has published an informative score for

            def record_outputs() -> None:
                for topic, msgtype, cdr in player.take_outputs():
                    try:
                        msg = store.deserialize_cdr(cdr, msgtype)
                    except Exception as error:  # a node of another version: keep going, say so
                        skipped.append(f"{topic}: a {msgtype} message does not decode ({error}); not recorded")
                        continue
                    bag.copy(topic, msgtype, "", _stamp_ns(msg), cdr)
                    collector.on_message(topic, msg)
                    if topic == INFORMATIVE_TOPIC:
                        scored[0] = max(scored[0], int(msg.segment_index))

            def wait_for_node(second: int) -> bool:
                """Until the node has scored `second` (True), or `follow_timeout_s` passed or it exited (False)."""
                deadline = time.monotonic() + follow_timeout_s
                while scored[0] < second:
                    if time.monotonic() > deadline or (node_alive is not None and not node_alive()):
                        return False
                    time.sleep(0.01)
                    record_outputs()
                return True

            begun = started = time.monotonic()
            last_clock = None
            waited = -1  # the last second whose data waited for the node
            for connection, record_ns, raw in source.messages():
                if connection.topic not in player.publishers:
                    continue
                if first_ns is None:
                    first_ns = record_ns
                    collector.origin_ns = record_ns if collector.origin_ns is None else collector.origin_ns
                offset_s = (record_ns - first_ns) / NS_PER_S
                if follow is not None and int(offset_s) != waited:
                    waited = int(offset_s)
                    if not wait_for_node(waited - follow):
                        raise RuntimeError(
                            f"the node scored no second past {scored[0]} within {follow_timeout_s:g} s "
                            f"(waiting to send second {waited}): is it stuck, or not publishing informative scores?"
                        )
                    started = max(started, time.monotonic() - offset_s / rate)  # pacing resumes from here
                due = started + offset_s / rate
                while (wait := due - time.monotonic()) > 0:
                    time.sleep(min(wait, 0.05))
                    record_outputs()
                if last_clock is None or record_ns - last_clock >= CLOCK_PERIOD_NS:
                    player.publish_clock(record_ns)
                    last_clock = record_ns
                player.publish(connection.topic, record_ns, raw)
                bag.copy(connection.topic, connection.msgtype, definitions[connection.topic], record_ns, raw)
                last_ns = max(last_ns, record_ns)
                progress.update(offset_s)
            published_s = time.monotonic() - begun
            # The tail: the clock runs on (at the replay's pace) so the node closes its last seconds.
            tail_started = time.monotonic()
            last_second = int((last_ns - first_ns) / NS_PER_S) if first_ns is not None else 0
            while (elapsed := time.monotonic() - tail_started) < tail_s:
                if follow is not None and scored[0] >= last_second:
                    time.sleep(0.5)  # the last answer's remaining words
                    record_outputs()
                    break
                if first_ns is not None:
                    player.publish_clock(last_ns + round(elapsed * rate * NS_PER_S))
                time.sleep(0.05)
                record_outputs()
            record_outputs()
            counts = dict(bag.counts)
    finally:
        player.close()
    from vispeak_ros.tools.replay import RunFigures

    stream_s = (last_ns - first_ns) / NS_PER_S if first_ns is not None else 0.0
    return RunFigures(counts, stream_s, source.problems + skipped, published_s)
