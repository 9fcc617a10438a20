"""Hostile messages of every input type through a running vispeak node (own process, demo model, Cyclone DDS):
how many were tried, how often the node crashed, how many it rejected (counted on /diagnostics).

The messages are test/reliability/hostile.py's hypothesis strategies (derandomized: the same messages every run),
at least 10,000 per input type (`--quick`: 1,000): compressed frames, raw frames, mgonzs13 audio and ros-drivers
audio (their content, with valid advancing stamps), hostile stamps on valid frames and audio, queries. Two node
processes: compressed camera + mgonzs13 audio, raw camera + ros-drivers audio. Messages go out in bursts of
BURST, each once the node's diagnostics count the previous burst received (or a second passed: best-effort
messages the node's readers could not hold are `lost`, not counted against it). A node that dies is a crash; it is
restarted and the run goes on. Figures: tried, crashes, rejected, lost, and per type tried_<type>, rejected_<type>.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

DESCRIPTION = "hostile messages of every input type into a running node: tried, crashes, rejected"
REPO_ROOT = Path(__file__).resolve().parents[1]
BURST = 16
SPACING_S = 0.0005
BAD_KEYS = ("bad_frames", "bad_audio", "bad_audio_info", "bad_stamps", "unstamped_frames")


class Flow:
    """Publishes in bursts the node has provably received (or given up on after a second: counted lost)."""

    def __init__(self, probe, pub, key: str) -> None:
        self.probe, self.pub, self.key = probe, pub, key
        self.sent = self.lost = 0
        self.base = probe.count(key)

    def send(self, msg) -> None:
        self.pub.publish(msg)
        self.sent += 1
        time.sleep(SPACING_S)
        if self.sent % BURST == 0:
            self.sync()

    def sync(self) -> None:
        target = self.base + self.sent - self.lost
        if not self.probe.wait_diagnostics(lambda v: int(v.get(self.key, 0)) >= target, 1.0):
            self.lost += max(0, target - self.probe.count(self.key))


class Rig:
    """One node process and its probe; restarts the node when it died."""

    def __init__(self, audio_flavour: str, *params: str) -> None:
        from hostile import BASE_S
        from relkit import Probe

        from vispeak_ros.ros.adapters.dds_adapter import DdsNode

        self.audio_flavour, self.params, self.base_s = audio_flavour, params, BASE_S
        self.crashes, self.tracebacks = 0, 0
        self.probe = Probe(lambda name, **kw: DdsNode(name, **kw), audio_flavour=audio_flavour)
        self.node = None
        self.start()

    def start(self) -> None:
        import os

        from relkit import NS, NodeProcess

        self.node = NodeProcess(dict(os.environ), "use_sim_time:=true", "diagnostics_period_s:=0.1",
                                f"audio_flavour:={self.audio_flavour}", "mute_audio_while_speaking:=false",
                                *self.params)  # fmt: skip
        if not (self.probe.wait_matched() and self.probe.sync_clock(self.base_s * NS)):
            raise RuntimeError(f"the node did not come up: {self.node.stderr()[-2000:]}")

    def check(self) -> None:
        if not self.node.alive():
            self.crashes += 1
            self.tracebacks += "Traceback" in self.node.stderr()
            print(f"fuzz: the node died: {self.node.stderr()[-2000:]}", file=sys.stderr)
            self.start()

    def bad(self) -> int:
        return sum(self.probe.count(key) for key in BAD_KEYS)

    def close(self) -> None:
        code = self.node.stop()
        self.tracebacks += "Traceback" in self.node.stderr()
        if code not in (0, None):
            self.crashes += 1
        self.probe.node.shutdown()


def _phase(rig: Rig, name: str, examples: int, strategy, send, figures: dict) -> None:
    """Draw `examples` messages (derandomized) and send each; record tried and rejected for `name`."""
    from hypothesis import HealthCheck, Phase, given, settings

    before, tried = rig.bad(), [0]

    @settings(max_examples=examples, database=None, derandomize=True, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(strategy)
    def each(drawn) -> None:
        send(drawn)
        tried[0] += 1
        if tried[0] % 500 == 0:
            rig.check()

    each()
    rig.probe.wait_diagnostics(lambda v: True, 2.0)
    rig.check()
    figures[f"tried_{name}"] = tried[0]
    figures[f"rejected_{name}"] = rig.bad() - before


def run(quick: bool = False) -> dict:
    sys.path.insert(0, str(REPO_ROOT / "test" / "reliability"))
    from hypothesis import strategies as st

    from vispeak_ros.ros.isolation import isolate_this_process

    isolate_this_process()
    import hostile as h
    from relkit import NS

    n = 1_000 if quick else 10_000
    figures: dict = {}
    lost = crashes = tracebacks = 0
    started = time.monotonic()

    rig = Rig("mgonzs13", "camera_transport:=compressed")
    build = h.Builder(rig.probe)
    try:
        camera = Flow(rig.probe, rig.probe.publisher("sensor_msgs/msg/CompressedImage", "/camera/image_raw/compressed"),
                      "received camera/image_raw/compressed")  # fmt: skip
        audio = Flow(rig.probe, rig.probe.publisher("audio_common_msgs/msg/AudioStamped", "/audio"), "received audio")
        query = Flow(rig.probe, rig.probe.publisher("std_msgs/msg/String", "/query", rig.probe.port_mod.DEFAULT),
                     "received query")  # fmt: skip
        rig.probe.wait_matched()
        frames = h.Clock(h.BASE_S * NS, 33_333_333)
        sound = h.Clock(h.BASE_S * NS, 10_000_000)
        drawn = st.tuples(h.COMPRESSED, h.JITTER_NS)
        _phase(rig, "compressed", n, drawn, lambda d: camera.send(build.compressed(frames.stamp(d[1]), **d[0])),
               figures)  # fmt: skip
        sound.next_ns = frames.next_ns - NS
        drawn = st.tuples(h.MGONZS13, h.JITTER_NS)
        _phase(rig, "mgonzs13_audio", n, drawn,
               lambda d: audio.send(build.mgonzs13(sound.stamp(d[1] // 10), **d[0])), figures)  # fmt: skip
        import numpy as np

        good = {"flag": 1, "field": "float32_data", "channels": 1, "rate": 16_000,
                "floats": np.zeros(1600, np.float32), "ints": np.zeros(0, np.int64)}  # fmt: skip

        def stamped(stamp) -> None:
            camera.send(build.compressed(stamp, "jpeg", h.JPEG))
            audio.send(build.mgonzs13(stamp, **good))

        _phase(rig, "stamps", n // 2, h.hostile_stamps(), stamped, figures)  # a frame and a chunk each
        figures["tried_stamps"] *= 2
        _phase(rig, "query", n, h.QUERY, lambda text: query.send(build.query(text)), figures)
        lost += camera.lost + audio.lost + query.lost
    finally:
        rig.close()
        crashes, tracebacks = crashes + rig.crashes, tracebacks + rig.tracebacks

    rig = Rig("ros_drivers", "camera_transport:=raw", "audio_stamped:=true")
    build = h.Builder(rig.probe)
    try:
        camera = Flow(rig.probe, rig.probe.publisher("sensor_msgs/msg/Image", "/camera/image_raw"),
                      "received camera/image_raw")  # fmt: skip
        audio = Flow(rig.probe, rig.probe.publisher("audio_common_msgs/msg/AudioDataStamped", "/audio_stamped"),
                     "received audio_stamped")  # fmt: skip
        info = rig.probe.publisher("audio_common_msgs/msg/AudioInfo", "/audio_info",
                                   rig.probe.port_mod.TRANSIENT_LOCAL_LATCHED)  # fmt: skip
        rig.probe.wait_matched()
        frames = h.Clock(h.BASE_S * NS, 33_333_333)
        sound = h.Clock(h.BASE_S * NS, 10_000_000)
        _phase(rig, "raw", n, st.tuples(h.RAW, h.JITTER_NS),
               lambda d: camera.send(build.raw(frames.stamp(d[1]), **d[0])), figures)  # fmt: skip
        sound.next_ns = frames.next_ns - NS

        def ros_drivers(d) -> None:
            body, blob, jitter = d
            if body is not None:
                info.publish(build.ros_drivers_info(**body))
            audio.send(build.ros_drivers_audio(sound.stamp(jitter // 10), blob))

        _phase(rig, "ros_drivers_audio", n, st.tuples(h.AUDIO_INFO, h.AUDIO_BYTES, h.JITTER_NS), ros_drivers, figures)
        lost += camera.lost + audio.lost
    finally:
        rig.close()
        crashes, tracebacks = crashes + rig.crashes, tracebacks + rig.tracebacks

    tried = sum(v for k, v in figures.items() if k.startswith("tried_"))
    rejected = sum(v for k, v in figures.items() if k.startswith("rejected_"))
    return {"tried": tried, "crashes": crashes, "tracebacks": tracebacks, "rejected": rejected, "lost": lost,
            "minutes": (time.monotonic() - started) / 60, **figures}  # fmt: skip
