"""Audio conversions: both audio_common_msgs flavours through real CDR, stamps, re-anchoring, clear errors."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vispeak_ros.core.resample import StreamResampler, to_float32
from vispeak_ros.ros import audio_common
from vispeak_ros.ros.conversions import ConversionError
from vispeak_ros.ros.conversions.audio import AudioChunk, AudioStreamConverter, detect_flavour

TOPIC = "/audio"
NS = 1_000_000_000
T0 = 1_700_000_000 * NS + 123_456_789
NS_PER_OUT_SAMPLE = NS // 16_000  # 62,500 ns

MG = audio_common.typestore("mgonzs13")
RD = audio_common.typestore("ros_drivers")


def stamp(store, ns):
    return store.types["std_msgs/msg/Header"](
        stamp=store.types["builtin_interfaces/msg/Time"](sec=ns // NS, nanosec=ns % NS), frame_id="mic"
    )


def through_cdr(store, msg):
    return store.deserialize_cdr(store.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


PA_FIELDS = {1: ("float32_data", np.float32), 2: ("int32_data", np.int32), 8: ("int16_data", np.int16)}
PA_FIELDS |= {16: ("int8_data", np.int8), 32: ("uint8_data", np.uint8)}


def mg_msg(ns, samples, fmt=8, channels=1, rate=16_000):
    """An mgonzs13 AudioStamped with interleaved `samples` in the array `fmt` selects, via CDR."""
    types = MG.types
    arrays = {name: np.zeros(0, dtype) for name, dtype in PA_FIELDS.values()}
    name, dtype = PA_FIELDS[fmt]
    arrays[name] = np.asarray(samples, dtype)
    info = types["audio_common_msgs/msg/AudioInfo"](
        format=fmt, channels=channels, rate=rate, chunk=len(samples) // max(channels, 1)
    )
    audio = types["audio_common_msgs/msg/Audio"](
        audio_data=types["audio_common_msgs/msg/AudioData"](**arrays), info=info
    )
    return through_cdr(MG, types["audio_common_msgs/msg/AudioStamped"](header=stamp(MG, ns), audio=audio))


def rd_info(coding="wave", sample_format="S16LE", rate=16_000, channels=1, bitrate=192):
    msg = RD.types["audio_common_msgs/msg/AudioInfo"](
        channels=channels, sample_rate=rate, sample_format=sample_format, bitrate=bitrate, coding_format=coding
    )
    return through_cdr(RD, msg)


def rd_msg(ns, data: bytes):
    types = RD.types
    audio = types["audio_common_msgs/msg/AudioData"](data=np.frombuffer(data, np.uint8))
    return through_cdr(RD, types["audio_common_msgs/msg/AudioDataStamped"](header=stamp(RD, ns), audio=audio))


def joined(chunks: list[AudioChunk]) -> np.ndarray:
    return np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)


def assert_contiguous(chunks: list[AudioChunk], start_ns: int) -> None:
    expected = start_ns
    for chunk in chunks:
        assert chunk.samples.dtype == np.float32 and chunk.samples.ndim == 1 and chunk.samples.size > 0
        assert chunk.stamp_ns == expected
        expected += chunk.samples.size * NS_PER_OUT_SAMPLE


def stream_mg(converter, pcm, fmt=8, channels=1, rate=16_000, frames_per_msg=512, t0=T0, flush=True):
    chunks = []
    for start in range(0, len(pcm) // channels, frames_per_msg):
        ns = t0 + start * NS // rate
        chunks += converter.convert(
            mg_msg(ns, pcm[start * channels : (start + frames_per_msg) * channels], fmt, channels, rate)
        )
    return chunks + converter.flush() if flush else chunks


# ---- interface definitions -------------------------------------------------------------------------------------


def fields(store, name):
    return [f for f in store.types[f"audio_common_msgs/msg/{name}"].__dataclass_fields__ if f != "__msgtype__"]


def test_ros_drivers_definitions_match_upstream():
    assert fields(RD, "AudioData") == ["data"]
    assert fields(RD, "AudioDataStamped") == ["header", "audio"]
    assert fields(RD, "AudioInfo") == ["channels", "sample_rate", "sample_format", "bitrate", "coding_format"]
    assert "audio_common_msgs/msg/AudioStamped" not in RD.types


def test_mgonzs13_definitions_match_upstream():
    assert fields(MG, "AudioData") == ["float32_data", "int32_data", "int16_data", "int8_data", "uint8_data"]
    assert fields(MG, "AudioInfo") == ["format", "channels", "rate", "chunk"]
    assert fields(MG, "Audio") == ["audio_data", "info"]
    assert fields(MG, "AudioStamped") == ["header", "audio"]


def test_flavours_cannot_share_a_store_and_each_store_is_fresh():
    store = audio_common.typestore("ros_drivers")
    with pytest.raises(Exception, match="AudioData"):
        audio_common.register(store, "mgonzs13")
    assert "vispeak_ros/msg/Feedback" in store.types  # our own messages come with it
    assert audio_common.typestore("mgonzs13") is not audio_common.typestore("mgonzs13")
    with pytest.raises(ValueError, match="ros_drivers, mgonzs13"):
        audio_common.typestore("ros1")


def test_definitions_are_package_data_files():
    for flavour in audio_common.FLAVOURS:
        names = audio_common.message_definitions(flavour)
        assert all(name.startswith("audio_common_msgs/msg/") for name in names)
    assert len(audio_common.message_definitions("ros_drivers")) == 3
    assert len(audio_common.message_definitions("mgonzs13")) == 4


# ---- mgonzs13 ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [1, 2, 8, 16, 32])
@pytest.mark.parametrize("channels", [1, 2])
def test_mgonzs13_every_format_round_trips_at_16khz(fmt, channels):
    _, dtype = PA_FIELDS[fmt]
    rng = np.random.default_rng(fmt * 10 + channels)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    frames = 3_000
    if info is None:
        pcm = rng.uniform(-1, 1, frames * channels).astype(dtype)
    else:
        pcm = rng.integers(info.min, info.max, frames * channels, dtype=dtype, endpoint=True)
    converter = AudioStreamConverter(TOPIC, "mgonzs13")
    chunks = stream_mg(converter, pcm, fmt, channels, frames_per_msg=700, flush=False)
    names = {1: "paFloat32", 2: "paInt32", 8: "paInt16", 16: "paInt8", 32: "paUInt8"}
    assert converter.format.sample_format == names[fmt] and converter.format.channels == channels
    chunks += converter.flush()
    assert converter.format is None  # flushed: the next message starts a new stream
    assert_contiguous(chunks, T0)
    expected = to_float32(pcm).reshape(-1, channels).mean(axis=1, dtype=np.float32)
    np.testing.assert_allclose(joined(chunks), expected, atol=1e-7)


def test_mgonzs13_48khz_stereo_is_resampled_like_one_shot():
    rate = 48_000
    t = np.arange(rate) / rate
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 1200 * t)
    pcm = (np.stack([left, right], axis=1).reshape(-1) * 32767).astype(np.int16)
    chunks = stream_mg(AudioStreamConverter(TOPIC), pcm, 8, 2, rate, frames_per_msg=4096)
    assert_contiguous(chunks, T0)
    reference = StreamResampler(rate, 2)
    expected = np.concatenate([reference.process(pcm), reference.flush()])
    assert joined(chunks).size == 16_000
    np.testing.assert_allclose(joined(chunks), expected, atol=1e-4)


def test_stamp_jitter_within_tolerance_keeps_the_stream_contiguous():
    rng = np.random.default_rng(1)
    converter = AudioStreamConverter(TOPIC, tolerance_s=0.05)
    chunks, jitters = [], rng.integers(-20, 20, 30) * 1_000_000  # +-20 ms
    for k, jitter in enumerate(jitters):
        chunks += converter.convert(mg_msg(T0 + k * 32_000_000 + int(jitter), np.full(512, 1000, np.int16)))
    assert_contiguous(chunks, T0 + int(jitters[0]))
    assert converter.stats.reanchors == 0 and joined(chunks).size == 30 * 512


def test_a_jump_flushes_the_old_stream_and_re_anchors():
    rate = 48_000
    converter = AudioStreamConverter(TOPIC)
    first = []
    for k in range(5):
        first += converter.convert(mg_msg(T0 + k * 100_000_000, np.full(4800, 3000, np.int16), rate=rate))
    later = T0 + 10 * NS  # a gap of 9.5 s (lost messages, or the bag looped)
    second = converter.convert(mg_msg(later, np.full(4800, 3000, np.int16), rate=rate))
    second += converter.convert(mg_msg(later + 100_000_000, np.full(4800, 3000, np.int16), rate=rate))
    second += converter.flush()
    assert converter.stats.reanchors == 1
    old = [c for c in second if c.stamp_ns < later]
    new = [c for c in second if c.stamp_ns >= later]
    assert_contiguous(first + old, T0)
    assert joined(first + old).size == 5 * 1600  # the old stream's tail was flushed, nothing lost
    assert new[0].stamp_ns == later
    assert_contiguous(new, later)
    assert joined(new).size == 2 * 1600


def test_a_rate_change_starts_a_new_stream():
    converter = AudioStreamConverter(TOPIC)
    chunks = converter.convert(mg_msg(T0, np.zeros(4800, np.int16), rate=48_000))
    switch = T0 + 100_000_000
    chunks += converter.convert(mg_msg(switch, np.ones(1600, np.int16), rate=16_000))
    chunks += converter.flush()
    assert converter.stats.format_changes == 1
    assert [c.stamp_ns for c in chunks][-1] == switch
    assert joined(chunks).size == 3200


@settings(derandomize=True, max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=10), rate=st.sampled_from([16_000, 44_100, 48_000]))
def test_stamps_are_contiguous_for_any_message_sizes(sizes, rate):
    converter = AudioStreamConverter(TOPIC, "mgonzs13")
    chunks, frames = [], 0
    for size in sizes:
        chunks += converter.convert(mg_msg(T0 + frames * NS // rate, np.full(size, 100, np.int16), rate=rate))
        frames += size
    chunks += converter.flush()
    assert_contiguous(chunks, T0)
    assert joined(chunks).size == round(frames * 16_000 / rate)


# ---- ros_drivers: wave ------------------------------------------------------------------------------------------

PCM_CASES = {"S16LE": "<i2", "S16BE": ">i2", "S32LE": "<i4", "F32LE": "<f4", "U8": "u1", "S8": "i1"}


@pytest.mark.parametrize("sample_format", [*PCM_CASES, "S24LE"])
def test_ros_drivers_wave_formats_round_trip_with_split_frames(sample_format):
    rng = np.random.default_rng(len(sample_format))
    frames, channels = 2_000, 2
    if sample_format == "S24LE":
        values = rng.integers(-(2**23), 2**23, frames * channels)
        raw = np.stack([values & 0xFF, (values >> 8) & 0xFF, (values >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()
        expected = (values / 2**23).astype(np.float32)
    else:
        dtype = PCM_CASES[sample_format]
        if dtype.endswith("f4"):
            values = rng.uniform(-1, 1, frames * channels).astype(dtype)
        else:
            limits = np.iinfo(np.dtype(dtype))
            values = rng.integers(limits.min, limits.max, frames * channels, endpoint=True).astype(dtype)
        raw = values.tobytes()
        expected = to_float32(values.astype(np.dtype(dtype).newbyteorder("=")))
    expected = expected.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    converter = AudioStreamConverter(TOPIC, "ros_drivers")
    converter.on_info(rd_info("wave", sample_format, 16_000, channels))
    chunks, position = [], 0
    for size in [1, 999, 3, 1200, 4097, 7]:  # odd sizes split samples and frames: the decoder carries the rest
        chunks += converter.convert(
            rd_msg(T0 + (position // (len(raw) // frames)) * NS_PER_OUT_SAMPLE, raw[position : position + size])
        )
        position += size
    chunks += converter.convert(rd_msg(T0 + (position // (len(raw) // frames)) * NS_PER_OUT_SAMPLE, raw[position:]))
    chunks += converter.flush()
    assert_contiguous(chunks, T0)
    np.testing.assert_allclose(joined(chunks), expected, atol=1e-6)


def test_ros_drivers_audio_waits_for_info():
    converter = AudioStreamConverter(TOPIC)
    pcm = np.full(1600, 8192, np.int16).tobytes()
    assert converter.convert(rd_msg(T0, pcm)) == []
    assert converter.waiting_for_info and converter.stats.dropped_waiting_for_info == 1
    converter.on_info(rd_info())
    chunks = converter.convert(rd_msg(T0 + 100_000_000, pcm))
    assert chunks[0].stamp_ns == T0 + 100_000_000 and np.allclose(chunks[0].samples, 0.25)


def test_unstamped_audio_data_takes_the_stamp_given():
    converter = AudioStreamConverter(TOPIC, "ros_drivers")
    converter.on_info(rd_info())
    plain = RD.types["audio_common_msgs/msg/AudioData"](data=np.zeros(320, np.uint8))
    assert converter.convert(plain, stamp_ns=T0)[0].stamp_ns == T0
    with pytest.raises(ConversionError, match="no header"):
        converter.convert(plain)


def test_flavour_is_detected_from_fields():
    assert detect_flavour(mg_msg(T0, np.zeros(4, np.int16))) == "mgonzs13"
    assert detect_flavour(rd_msg(T0, b"\x00\x00")) == "ros_drivers"
    with pytest.raises(ConversionError, match="not an audio_common_msgs message"):
        detect_flavour(SimpleNamespace(header=None))


# ---- errors ----------------------------------------------------------------------------------------------------


def test_unsupported_portaudio_format_is_named():
    msg = SimpleNamespace(
        header=SimpleNamespace(stamp=SimpleNamespace(sec=1, nanosec=0)),
        audio=SimpleNamespace(
            audio_data=SimpleNamespace(int32_data=[1, 2]),
            info=SimpleNamespace(format=4, channels=1, rate=16_000, chunk=2),
        ),
    )
    with pytest.raises(ConversionError) as info:
        AudioStreamConverter(TOPIC).convert(msg)
    text = str(info.value)
    assert text.startswith(TOPIC) and "unsupported AudioInfo format 4" in text
    assert "8 (paInt16)" in text and "1 (paFloat32)" in text and "32 (paUInt8)" in text


@pytest.mark.parametrize(
    ("info", "message"),
    [
        (dict(coding="opus"), "unsupported AudioInfo coding_format 'opus' (supported: wave, mp3)"),
        (dict(sample_format="S20LE"), "unsupported AudioInfo sample_format 'S20LE' (supported: U8, S8, S16LE"),
        (dict(rate=0), "malformed message: sample rate 0 Hz"),
        (dict(channels=0), "malformed message: 0 channels"),
    ],
)
def test_bad_ros_drivers_info_is_rejected(info, message):
    with pytest.raises(ConversionError) as error:
        AudioStreamConverter(TOPIC, "ros_drivers").on_info(rd_info(**info))
    assert str(error.value).startswith(f"{TOPIC}: ") and message in str(error.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(samples=np.zeros(5, np.int16), channels=2), "5 samples in int16_data is not a multiple of 2 channels"),
        (dict(samples=np.zeros(4, np.int16), rate=0), "sample rate 0 Hz"),
        (dict(samples=np.zeros(4, np.int16), channels=0), "0 channels"),
    ],
)
def test_malformed_mgonzs13_audio_is_rejected(kwargs, message):
    with pytest.raises(ConversionError, match=f"^{TOPIC}: malformed message: {message}"):
        AudioStreamConverter(TOPIC).convert(mg_msg(T0, **kwargs))


def test_importing_conversions_pulls_in_nothing_heavy():
    code = (
        "import sys, vispeak_ros.ros.conversions, vispeak_ros.ros.conversions.image, "
        "vispeak_ros.ros.conversions.audio, vispeak_ros.ros.audio_common;"
        "print(sorted(m for m in ('torch', 'rclpy', 'cyclonedds', 'cv2', 'av', 'soxr') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
