"""Paced replay publishes a recording's topics over Cyclone DDS at their recorded pace and records what a node
answers on /vispeak/*. The node here is a stand-in written in the test against the same topics (the real node
comes with its own issue): it subscribes to the camera and answers each frame with an Informative message."""

import threading
import time

import pytest

pytest.importorskip("cyclonedds")

from vispeak_ros.core.clock import NS_PER_S
from vispeak_ros.ros import port
from vispeak_ros.ros.adapters.dds_types import pad4
from vispeak_ros.ros.isolation import isolated_env
from vispeak_ros.tools.bag_source import open_recording, with_our_types
from vispeak_ros.tools.replay import replay
from vispeak_ros.tools.replay_paced import paced_env
from vispeak_ros.training import recordings, world

CAMERA, AUDIO, QUERY = "/camera/image_raw/compressed", "/audio", "/query"
MIC = "/robot/microphone"
RATE = 4.0


class StandInNode:
    """Subscribes to the inputs as raw CDR (arrival wall times kept) and answers every camera frame."""

    def __init__(self, store, env):
        from vispeak_ros.ros.adapters.dds_adapter import DdsNode

        self.node = DdsNode("stand_in", typestore=store, env=env)
        self.store = store
        self.received = {CAMERA: [], AUDIO: [], QUERY: []}
        qos = port.DEFAULT.with_depth(200)
        types = {CAMERA: "sensor_msgs/msg/CompressedImage", AUDIO: "audio_common_msgs/msg/AudioStamped",
                 QUERY: "std_msgs/msg/String"}  # fmt: skip
        for topic, msgtype in types.items():
            name = MIC if topic == AUDIO else topic  # the replay remaps /audio to where this node listens
            self.node.create_subscription(msgtype, name, lambda s, t=topic: self._on(t, s), qos, raw=True)
        self.informative = self.node.create_publisher("vispeak_ros/msg/Informative", "/vispeak/informative", qos)
        self.thread = threading.Thread(target=self.node.spin, daemon=True)
        self.thread.start()

    def _on(self, topic, sample):
        data = bytes(sample[0])
        self.received[topic].append((time.monotonic(), data))
        if topic == CAMERA:
            frame = self.store.deserialize_cdr(data, "sensor_msgs/msg/CompressedImage")
            types = self.store.types
            header = types["std_msgs/msg/Header"](stamp=frame.header.stamp, frame_id="camera")
            msg = types["vispeak_ros/msg/Informative"](header=header, segment_index=len(self.received[CAMERA]),
                                                       probability=0.1, running_sum=0.3, threshold=0.35,
                                                       triggered=False)  # fmt: skip
            self.informative.publish(msg)

    def close(self):
        self.node.shutdown()
        self.thread.join(2)


def test_the_loopback_environment_keeps_the_domain_and_stays_on_loopback():
    env = paced_env({"ROS_DOMAIN_ID": "42", "CYCLONEDDS_URI": "<CycloneDDS/>"})
    assert env["ROS_DOMAIN_ID"] == "42" and env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert '<NetworkInterface name="lo"/>' in env["CYCLONEDDS_URI"]
    mine = {"ROS_DOMAIN_ID": "7", "CYCLONEDDS_URI": "<CycloneDDS/>"}
    assert paced_env(mine, network=True) == mine


def test_paced_replay_publishes_in_real_time_and_records_the_node_outputs(tmp_path):
    stream = world.generate("wake_up", seed=2, size=(96, 72), fps=10)  # 11 s
    bag = recordings.write_bag(stream, tmp_path / "bag", storage="mcap")
    recording = open_recording(bag)
    sent = {topic: [] for topic in (CAMERA, AUDIO, QUERY)}
    for connection, stamp, raw in recording.messages():
        sent[connection.topic].append((stamp, pad4(bytes(raw))))
    env = isolated_env()
    node = StandInNode(with_our_types(recording.typestore), env)
    try:
        result = replay(
            bag, mode="paced", output_dir=tmp_path / "out", out=None, progress=False,
            paced_options={"rate": RATE, "tail_s": 1.0, "wait_for_node_s": 20.0, "env": env, "remap": {AUDIO: MIC}},
        )  # fmt: skip
    finally:
        node.close()
    for topic in (CAMERA, AUDIO, QUERY):  # every message, as recorded, in order
        assert [data for _, data in node.received[topic]] == [data for _, data in sent[topic]], topic
    arrivals = [t for t, _ in node.received[CAMERA]]
    expected = (sent[CAMERA][-1][0] - sent[CAMERA][0][0]) / NS_PER_S / RATE
    assert 0.85 * expected <= arrivals[-1] - arrivals[0] <= expected + 1.5  # paced, not as fast as possible
    halfway = sent[CAMERA][len(arrivals) // 2][0] - sent[CAMERA][0][0]
    assert abs(arrivals[len(arrivals) // 2] - arrivals[0] - halfway / NS_PER_S / RATE) < 0.5

    output = open_recording(result.bag)
    answers = [(stamp, output.typestore.deserialize_cdr(raw, c.msgtype)) for c, stamp, raw in
               output.messages({"/vispeak/informative"})]  # fmt: skip
    assert len(answers) == len(sent[CAMERA])  # the node's every answer, recorded at its stream-time stamp
    assert sorted(stamp for stamp, _ in answers) == [stamp for stamp, _ in sent[CAMERA]]
    copied = sorted((stamp, bytes(raw)) for c, stamp, raw in output.messages({CAMERA}))
    assert [stamp for stamp, _ in copied] == [stamp for stamp, _ in sent[CAMERA]]  # the input topics are kept
    assert len(result.collector.scores) == len(sent[CAMERA]) and result.collector.scores[0].t == 0.0
    assert result.timeline_png.is_file() and result.timeline_html.is_file()


def test_paced_replay_without_a_node_says_so(tmp_path):
    stream = world.generate("none", seed=1, size=(64, 48), fps=5)
    bag = recordings.write_bag(stream, tmp_path / "bag", storage="mcap")
    env = isolated_env()
    with pytest.raises(RuntimeError, match=f"no subscriber on {CAMERA} within 0.5 s: is vispeak-node running"):
        replay(bag, mode="paced", output_dir=tmp_path / "out", out=None, progress=False,
               paced_options={"wait_for_node_s": 0.5, "env": env})  # fmt: skip
    assert not list((tmp_path / "out").glob("*.vispeak.mcap"))


@pytest.mark.slow
def test_paced_replay_into_the_real_vispeak_node(tmp_path):
    """End to end: vispeak-node (Cyclone DDS, demo model) in its own process, the recording played at twice real
    time, its answers recorded. The node runs live (it may drop a stale segment when it falls behind), so this
    checks that its outputs arrive and are recorded in stream time, not which answers it gives."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    stream = world.generate("wake_up", seed=2, size=(96, 72), fps=10)  # 11 s
    bag = recordings.write_bag(stream, tmp_path / "bag", storage="mcap")
    env = isolated_env()
    node = subprocess.Popen(
        [sys.executable, str(repo / "scripts" / "vispeak-node"), "--transport", "dds", "--ros-args",
         "-p", "camera_transport:=compressed"],
        env={**env, "PYTHONPATH": str(repo)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        result = replay(
            bag, mode="paced", output_dir=tmp_path / "out", out=None, progress=False,
            paced_options={"rate": 2.0, "tail_s": 3.0, "wait_for_node_s": 120.0, "env": env},
        )  # fmt: skip
    finally:
        node.terminate()
        _, err = node.communicate(timeout=30)
    frames = [stamp for c, stamp, _ in open_recording(bag).messages({CAMERA})]
    output = open_recording(result.bag)
    scores = [stamp for _, stamp, _ in output.messages({"/vispeak/informative"})]
    assert len(scores) >= 0.7 * len(frames) / stream.fps, err[-2000:]  # most seconds were scored
    assert set(scores) <= set(frames)  # stamped with the chosen frames' own stamps: stream time
    assert result.counts["/camera/image_raw/compressed"] == len(frames)
    assert all(0.0 <= score.t <= stream.duration_s + 1.0 for score in result.collector.scores)
