"""mp3 from ros-drivers audio_capture: streaming decode of real LAME output chunked as GStreamer pushes it."""

import lameenc
import numpy as np
import pytest

from vispeak_ros.core.resample import StreamResampler
from vispeak_ros.ros import audio_common
from vispeak_ros.ros.conversions.audio import AudioStreamConverter

TOPIC = "/audio/audio_stamped"
NS = 1_000_000_000
T0 = 1_700_000_000 * NS
STORE = audio_common.typestore("ros_drivers")
LAME_DELAY = 576 + 529  # encoder delay + decoder delay, in samples, for LAME streams without a gapless tag


def speech_like(rate: int, seconds: float) -> np.ndarray:
    """A chirp plus an amplitude-modulated tone: speech-like, and with a unique cross-correlation peak."""
    t = np.arange(round(rate * seconds)) / rate
    chirp = 0.4 * np.sin(2 * np.pi * (200 * t + 2800 / (2 * seconds) * t**2))
    tone = 0.2 * np.sin(2 * np.pi * 523 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t))
    return (chirp + tone).astype(np.float32)


def encode_mp3(pcm: np.ndarray, rate: int, channels: int, kbps: int) -> bytes:
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(channels)
    encoder.set_quality(2)
    return bytes(encoder.encode((pcm * 32767).astype(np.int16).tobytes()) + encoder.flush())


def msg(ns: int, data: bytes):
    types = STORE.types
    header = types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=ns // NS, nanosec=ns % NS), frame_id=""
    )
    audio = types["audio_common_msgs/msg/AudioData"](data=np.frombuffer(data, np.uint8))
    stamped = types["audio_common_msgs/msg/AudioDataStamped"](header=header, audio=audio)
    return STORE.deserialize_cdr(STORE.serialize_cdr(stamped, stamped.__msgtype__), stamped.__msgtype__)


def info(rate: int, channels: int, kbps: int):
    return STORE.types["audio_common_msgs/msg/AudioInfo"](
        channels=channels, sample_rate=rate, sample_format="S16LE", bitrate=kbps, coding_format="mp3"
    )


def convert(converter: AudioStreamConverter, pieces: list[tuple[int, bytes]]):
    chunks = []
    for ns, data in pieces:
        chunks += converter.convert(msg(ns, data))
    chunks += converter.flush()
    return chunks


def assert_contiguous(chunks, start_ns):
    expected = start_ns
    for chunk in chunks:
        assert chunk.stamp_ns == expected
        expected += chunk.samples.size * NS // 16_000


def aligned_snr(decoded: np.ndarray, source: np.ndarray, max_lag: int = 4000) -> tuple[int, float]:
    """Lag (codec delay) by cross-correlation, then the SNR of the aligned decoded signal against the source."""
    corr = np.correlate(decoded[: source.size + max_lag], source, mode="valid")
    lag = int(np.argmax(corr))
    aligned = decoded[lag : lag + source.size]
    error = aligned - source[: aligned.size]
    return lag, float(10 * np.log10(np.sum(source[: aligned.size] ** 2) / np.sum(error**2)))


@pytest.fixture(scope="module")
def mono16k():
    """3 s at 16 kHz mono, 64 kbit/s: MPEG-2 Layer III frames of exactly 288 bytes (576 samples, 36 ms)."""
    source = speech_like(16_000, 3.0)
    return source, encode_mp3(source, 16_000, 1, 64)


def test_whole_frame_buffers_decode_with_20db_snr_and_contiguous_stamps(mono16k):
    source, mp3 = mono16k
    frame_bytes, frame_ns = 288, 576 * NS // 16_000
    assert len(mp3) % frame_bytes == 0
    rng = np.random.default_rng(0)
    pieces, frame = [], 0
    while frame * frame_bytes < len(mp3):
        count = int(rng.integers(1, 9))  # audio_capture pushes one GStreamer buffer: 288 B .. 2.3 KB here
        pieces.append((T0 + frame * frame_ns, mp3[frame * frame_bytes : (frame + count) * frame_bytes]))
        frame += count
    converter = AudioStreamConverter(TOPIC, "ros_drivers")
    converter.on_info(info(16_000, 1, 64))
    chunks = convert(converter, pieces)
    assert_contiguous(chunks, T0)
    assert converter.stats.reanchors == 0 and converter.stats.decode_errors == 0
    decoded = np.concatenate([c.samples for c in chunks])
    lag, snr = aligned_snr(decoded, source)
    assert lag == LAME_DELAY  # the codec delay stays in the stream: 69 ms at 16 kHz
    assert snr >= 20
    # What error there is, is almost all a gain: LAME's output decodes at 0.95 of the input level.
    aligned = decoded[lag : lag + source.size]
    gain = float(np.dot(aligned, source) / np.dot(source, source))
    residual = aligned - gain * source
    assert 0.9 < gain <= 1.0
    assert 10 * np.log10(np.sum((gain * source) ** 2) / np.sum(residual**2)) >= 40


def test_byte_chunks_that_split_frames_decode_the_same(mono16k):
    source, mp3 = mono16k
    duration_ns = (len(mp3) // 288) * 576 * NS // 16_000
    rng = np.random.default_rng(1)
    pieces, position = [], 0
    while position < len(mp3):
        size = int(rng.integers(200, 4000))
        pieces.append((T0 + position * duration_ns // len(mp3), mp3[position : position + size]))
        position += size
    converter = AudioStreamConverter(TOPIC, "ros_drivers")
    converter.on_info(info(16_000, 1, 64))
    chunks = convert(converter, pieces)
    assert_contiguous(chunks, T0)
    assert converter.stats.reanchors == 0
    _, snr = aligned_snr(np.concatenate([c.samples for c in chunks]), source)
    assert snr >= 20


def test_44k1_stereo_mp3_is_decoded_mixed_and_resampled():
    rate = 44_100
    left, right = speech_like(rate, 2.0), 0.5 * speech_like(rate, 2.0)
    mp3 = encode_mp3(np.stack([left, right], axis=1).reshape(-1), rate, 2, 128)
    duration_ns = 2 * NS
    pieces = [(T0 + p * duration_ns // len(mp3), mp3[p : p + 1500]) for p in range(0, len(mp3), 1500)]
    converter = AudioStreamConverter(TOPIC, "ros_drivers")
    converter.on_info(info(rate, 2, 128))
    chunks = convert(converter, pieces)
    assert_contiguous(chunks, T0)
    assert converter.stats.reanchors == 0
    reference = StreamResampler(rate)
    expected = np.concatenate([reference.process((left + right) / 2), reference.flush()])
    _, snr = aligned_snr(np.concatenate([c.samples for c in chunks]), expected)
    assert snr >= 20


def test_joining_a_stream_mid_way_skips_undecodable_frames_and_goes_on(mono16k):
    _, mp3 = mono16k
    start = 20 * 288 + 101  # inside a frame, and the next frames refer to a bit reservoir we never saw
    frame_ns = 576 * NS // 16_000
    pieces = [(T0 + (p // 288) * frame_ns, mp3[p : p + 700]) for p in range(start, len(mp3), 700)]
    converter = AudioStreamConverter(TOPIC, "ros_drivers")
    converter.on_info(info(16_000, 1, 64))
    chunks = convert(converter, pieces)
    assert chunks and chunks[0].stamp_ns in {ns for ns, _ in pieces}
    assert_contiguous(chunks, chunks[0].stamp_ns)
    decoded = sum(c.samples.size for c in chunks)
    assert decoded >= (len(mp3) - start) // 288 * 576 - 4 * 576  # at most a few frames lost


def test_converting_goes_on_after_a_flush(mono16k):
    _, mp3 = mono16k
    converter = AudioStreamConverter(TOPIC, "ros_drivers")
    converter.on_info(info(16_000, 1, 64))
    first = convert(converter, [(T0, mp3[: 10 * 288])])
    later = T0 + 60 * NS
    second = convert(converter, [(later, mp3[: 10 * 288])])
    assert [c.stamp_ns for c in second][:1] == [later]
    np.testing.assert_array_equal(
        np.concatenate([c.samples for c in second]), np.concatenate([c.samples for c in first])
    )
