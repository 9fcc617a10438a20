"""Hostile messages of every input type, sent over DDS into a running node process (the demo model): the node
stays up, receives every message (none lost), counts each rejection by kind on /diagnostics exactly as the
conversion functions judge it, logs them throttled, and afterwards a valid stream still produces the expected
trigger (the bundled demo recording's wake-up, in its annotated window, on each of two replays: sim time jumps
back each time) or informative scores for every second (synthetic frames and audio).

Content and stamps are fuzzed apart: content with a valid, advancing clock (so every rejection is the content's,
and the counts must equal an oracle's), stamps with valid content (zero, int32 extremes, years away, backwards,
duplicates; the node's stamp gate drops outliers). Hypothesis (derandomized, see test/conftest.py) draws at most
300 messages per input type; the 10,000-message run is `python -m benchmarks fuzz`. Messages go out in batches of
4 (below the sensor readers' keep-last-5 history), each batch once the node's diagnostics show the previous one
received, so best-effort delivery loses nothing.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
from hostile import (
    AUDIO_BYTES,
    AUDIO_INFO,
    BASE_S,
    COMPRESSED,
    JITTER_NS,
    JPEG,
    MGONZS13,
    QUERY,
    RAW,
    Builder,
    Clock,
    Sender,
    counts,
    delta,
    hostile_stamps,
    settle,
)
from hypothesis import given, settings
from relkit import NS, NodeProcess, Probe, play

from vispeak_ros import data
from vispeak_ros.core.events import Behaviour
from vispeak_ros.ros.conversions import ConversionError
from vispeak_ros.ros.conversions.audio import AudioStreamConverter
from vispeak_ros.ros.conversions.image import frame_payload

EXAMPLES = 300
FRAME_NS, AUDIO_NS = 33_333_333, 10_000_000
KEYS = ("bad_frames", "bad_stamps", "frames in", "unstamped_frames", "bad_audio", "bad_audio_info")


def start(dds_env, make_node, audio_flavour: str, *params: str) -> tuple[NodeProcess, Probe]:
    node = NodeProcess(dds_env, "use_sim_time:=true", "diagnostics_period_s:=0.1", f"audio_flavour:={audio_flavour}",
                       "mute_audio_while_speaking:=false", *params)  # fmt: skip
    probe = Probe(make_node, audio_flavour=audio_flavour)
    return node, probe


def ready(node: NodeProcess, probe: Probe) -> None:
    """The node hears every publisher of the probe and runs at sim time BASE_S."""
    assert probe.wait_matched(), node.stderr()
    assert probe.sync_clock(BASE_S * NS), node.stderr()


def wake_ups(events: list) -> list[float]:
    """Seconds into the demo recording of the WAKE_UP events among `events`."""
    from vispeak_ros.tools.bag_source import read_segments

    origin = next(iter(read_segments(data.demo_recording()))).start_ns
    return [
        (e.header.stamp.sec * NS + e.header.stamp.nanosec - origin) / NS
        for e in events
        if e.type == Behaviour.WAKE_UP and e.header.stamp.sec < BASE_S - 10
    ]


def test_hostile_compressed_frames_audio_stamps_and_queries_then_each_replay_of_the_demo_wakes_up(
    dds_env, make_node
) -> None:
    node, probe = start(dds_env, make_node, "mgonzs13", "camera_transport:=compressed")
    build = Builder(probe)
    try:
        camera = Sender(probe, "sensor_msgs/msg/CompressedImage", "/camera/image_raw/compressed")
        audio = Sender(probe, "audio_common_msgs/msg/AudioStamped", "/audio")
        query = Sender(probe, "std_msgs/msg/String", "/query", probe.port_mod.DEFAULT)
        ready(node, probe)
        frames = Clock(BASE_S * NS, FRAME_NS)
        oracle: Counter[str] = Counter()

        # 1. Frame content, valid stamps: every rejection is the content's, exactly as frame_payload judges it.
        @settings(max_examples=EXAMPLES, database=None)
        @given(body=COMPRESSED, jitter=JITTER_NS)
        def hostile_frame(body, jitter) -> None:
            msg = build.compressed(frames.stamp(jitter), **body)
            try:
                frame_payload(msg, "camera")
            except ConversionError:
                oracle["bad_frames"] += 1
            camera.send(msg)

        before = counts(probe, *KEYS)
        hostile_frame()
        settle(probe, camera)
        got = delta(counts(probe, *KEYS), before)
        assert got["bad_frames"] == oracle["bad_frames"] > 0, (got, oracle)
        assert got["frames in"] + got["bad_frames"] == camera.sent and got["bad_stamps"] == 0, got

        # 2. Audio content (wrong rates, channel counts, formats, NaN, clipped floats, empty), valid stamps: the
        # node's converter sees what the oracle's sees, in the same order.
        sound = Clock(frames.next_ns - NS, AUDIO_NS)
        converter = AudioStreamConverter("audio", flavour="mgonzs13")

        @settings(max_examples=EXAMPLES, database=None)
        @given(body=MGONZS13, jitter=JITTER_NS)
        def hostile_audio(body, jitter) -> None:
            msg = build.mgonzs13(sound.stamp(jitter // 10), **body)
            try:
                converter.convert(msg)
            except ConversionError:
                oracle["bad_audio"] += 1
            audio.send(msg)

        before = counts(probe, *KEYS)
        hostile_audio()
        settle(probe, audio)
        got = delta(counts(probe, *KEYS), before)
        assert got["bad_audio"] == oracle["bad_audio"] > 0 and got["bad_stamps"] == 0, (got, oracle)
        assert node.alive(), node.stderr()

        # 3. Stamps (zero, int32 extremes, anywhere, nanoseconds past a second), valid content: outliers are
        # dropped and counted, zero stamps are stamped on arrival; every frame is accounted for.
        good_audio = {"flag": 1, "field": "float32_data", "channels": 1, "rate": 16_000,
                      "floats": np.zeros(1600, np.float32), "ints": np.zeros(0, np.int64)}  # fmt: skip
        sent = camera.sent, audio.sent

        @settings(max_examples=EXAMPLES // 2, database=None)
        @given(stamp=hostile_stamps())
        def hostile_stamp(stamp) -> None:
            oracle["unstamped"] += stamp[0] * NS + stamp[1] == 0  # (0, 0), or (-1, 1e9)
            camera.send(build.compressed(stamp, "jpeg", JPEG))
            audio.send(build.mgonzs13(stamp, **good_audio))

        before = counts(probe, *KEYS)
        hostile_stamp()
        settle(probe, camera, audio)
        got = delta(counts(probe, *KEYS), before)
        frames_sent, audio_sent = camera.sent - sent[0], audio.sent - sent[1]
        assert got["unstamped_frames"] == oracle["unstamped"] and got["bad_frames"] == got["bad_audio"] == 0, got
        assert frames_sent <= got["frames in"] + got["bad_stamps"] <= frames_sent + audio_sent, got
        assert got["bad_stamps"] > 0 and node.alive(), node.stderr()

        # 4. Queries: any text, empty, whitespace, 4,000 characters.
        @settings(max_examples=EXAMPLES // 3, database=None)
        @given(text=QUERY)
        def hostile_query(text) -> None:
            query.send(build.query(text))

        hostile_query()
        settle(probe, query)
        assert node.alive(), node.stderr()
        assert any(level == 1 and message.startswith("bad input: ") for level, message, _ in probe.diagnostics)
        level, message, values = probe.diagnostics[-1]
        assert level in (0, 1) and {"bad_frames", "bad_audio", "bad_stamps"} <= set(values), (level, message)

        # 5. The demo recording, twice (its sim time is earlier than the fuzz's, and the second replay starts
        # before the first ended): the clock jumps back, a fresh session starts, the wake-up comes each time.
        play(probe, dds_env, "--rate", "3", "--until-s", "12")
        first = len(probe.events)
        assert probe.count("clock_jumps_back") >= 1
        play(probe, dds_env, "--rate", "3", "--until-s", "12")
        probe.spin(0.5)
        assert probe.count("clock_jumps_back") >= 2 and node.alive(), node.stderr()
    finally:
        code = node.stop()
    log = node.stderr()
    assert code == 0 and "Traceback" not in log, log
    # Logged throttled: a few lines per kind, each saying how many it stands for.
    warnings = [line for line in log.splitlines() if line.startswith("[WARN]")]
    bad = sum(probe.count(k) for k in ("bad_frames", "bad_audio", "bad_stamps"))
    assert len(warnings) < bad / 5 and any("more bad_frames since the last line" in w for w in warnings), warnings

    truth = json.loads(data.demo_annotations().read_text())["events"]
    wake = next(t for t in truth if t["behaviour"] == "WAKE_UP")

    def in_window(times: list[float]) -> bool:
        return any(max(0.0, wake["timespan"][0]) <= t <= wake["timespan"][1] + 2.0 for t in times)

    assert in_window(wake_ups(probe.events[:first])), (wake_ups(probe.events[:first]), wake)
    assert in_window(wake_ups(probe.events[first:])), (wake_ups(probe.events[first:]), wake)
    assert all(math.isfinite(i.probability) for i in probe.informative)


def test_hostile_raw_frames_and_ros_drivers_audio_then_a_valid_stream_is_scored(dds_env, make_node) -> None:
    node, probe = start(dds_env, make_node, "ros_drivers", "camera_transport:=raw", "audio_stamped:=true")
    build = Builder(probe)
    try:
        camera = Sender(probe, "sensor_msgs/msg/Image", "/camera/image_raw")
        audio = Sender(probe, "audio_common_msgs/msg/AudioDataStamped", "/audio_stamped")
        info_pub = probe.publisher(
            "audio_common_msgs/msg/AudioInfo", "/audio_info", probe.port_mod.TRANSIENT_LOCAL_LATCHED
        )
        ready(node, probe)
        frames = Clock(BASE_S * NS, FRAME_NS)
        oracle: Counter[str] = Counter()

        # 1. Raw frames: wrong sizes and steps, unknown encodings, huge dimensions, any endianness byte.
        @settings(max_examples=EXAMPLES, database=None)
        @given(body=RAW, jitter=JITTER_NS)
        def hostile_frame(body, jitter) -> None:
            msg = build.raw(frames.stamp(jitter), **body)
            try:
                frame_payload(msg, "camera")
            except ConversionError:
                oracle["bad_frames"] += 1
            camera.send(msg)

        before = counts(probe, *KEYS)
        hostile_frame()
        settle(probe, camera)
        got = delta(counts(probe, *KEYS), before)
        assert got["bad_frames"] == oracle["bad_frames"] > 0, (got, oracle)
        assert got["frames in"] + got["bad_frames"] == camera.sent and got["bad_stamps"] == 0, got
        assert node.alive(), node.stderr()

        # 2. AudioInfo (zero or huge rates, any channel count, unknown formats and codings) and audio bytes of any
        # length (odd sizes, NaN floats), valid stamps.
        sound = Clock(frames.next_ns - NS, AUDIO_NS)

        @settings(max_examples=EXAMPLES, database=None)
        @given(info=AUDIO_INFO, blob=AUDIO_BYTES, jitter=JITTER_NS)
        def hostile_audio(info, blob, jitter) -> None:
            if info is not None:
                msg = build.ros_drivers_info(**info)
                try:
                    AudioStreamConverter("audio", flavour="ros_drivers").on_info(msg)
                except ConversionError:
                    oracle["bad_info"] += 1
                info_pub.publish(msg)
            audio.send(build.ros_drivers_audio(sound.stamp(jitter // 10), blob))

        before = counts(probe, *KEYS)
        hostile_audio()
        settle(probe, audio)
        probe.spin(0.3)
        got = delta(counts(probe, *KEYS), before)
        # audio_info is reliable but keeps only the last message (latched): a burst may deliver fewer than sent.
        assert 0 < got["bad_audio_info"] <= oracle["bad_info"] and got["bad_stamps"] == 0, (got, oracle)
        assert got["bad_audio"] <= audio.sent and node.alive(), node.stderr()  # mp3 garbage: decode errors, kept going

        # 3. A valid stream afterwards, 100 s earlier in sim time than the fuzz (the clock jumps back): scored,
        # every second.
        info_pub.publish(build.ros_drivers_info(channels=1, rate=16000, sample_format="S16LE", coding="wave"))
        start_ns = (BASE_S - 100) * NS
        seconds = 6
        scored_before = len(probe.informative)

        def valid_scores() -> int:
            return sum(1 for i in probe.informative[scored_before:] if i.header.stamp.sec < BASE_S - 10)

        noise = np.random.default_rng(1)
        for tick in range(seconds * 10):
            now = start_ns + tick * NS // 10
            probe.set_clock(now)
            stamp = (now // NS, now % NS)
            frame = noise.integers(0, 255, (48, 64, 3), dtype=np.uint8).reshape(-1)
            camera.pub.publish(build.raw(stamp, "rgb8", 48, 64, 64 * 3, 0, 0, fill=frame))
            pcm = (300 * noise.standard_normal(1600)).astype("<i2").tobytes()
            audio.pub.publish(build.ros_drivers_audio(stamp, pcm))
            if tick % 10 == 9:  # flow control: the node has scored the second before this one
                second = tick // 10
                probe.node.spin_until(lambda s=second: valid_scores() >= s, 30.0)
            probe.node.spin_once(0.02)
        for step in range(12):
            probe.set_clock(start_ns + seconds * NS + step * NS // 10)
            probe.spin(0.1)
        probe.node.spin_until(lambda: valid_scores() >= seconds, 30.0)
        assert node.alive(), node.stderr()
        assert probe.count("clock_jumps_back") >= 1
    finally:
        code = node.stop()
    assert code == 0, node.stderr()
    assert "Traceback" not in node.stderr()
    scores = [i for i in probe.informative[scored_before:] if i.header.stamp.sec < BASE_S - 10]
    assert [i.segment_index for i in scores][:seconds] == list(range(seconds))
    assert all(math.isfinite(i.probability) and 0.0 <= i.probability <= 1.0 for i in scores)
