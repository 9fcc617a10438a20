"""The guards hostile input meets before it costs anything: audio rates and channel counts within bounds, NaN and
infinity refused, loud floats clipped, decompression bombs refused from their headers, stray stamps gated."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from vispeak_ros.ros import audio_common
from vispeak_ros.ros.conversions import ConversionError
from vispeak_ros.ros.conversions.audio import MAX_CHANNELS, MAX_RATE, MIN_RATE, AudioStreamConverter
from vispeak_ros.ros.conversions.image import (
    MAX_COMPRESSED_PIXELS,
    compressed_size,
    decode_frame,
    encode_jpeg,
    encode_png,
    frame_payload,
)
from vispeak_ros.ros.node import StampGate

NS = 1_000_000_000
MG = audio_common.typestore("mgonzs13")


def float_audio(samples: np.ndarray, rate: int = 16_000, channels: int = 1) -> object:
    """An mgonzs13 AudioStamped of paFloat32 samples."""
    types = MG.types
    arrays = {
        name: np.zeros(0, dtype)
        for name, dtype in [
            ("int32_data", np.int32),
            ("int16_data", np.int16),
            ("int8_data", np.int8),
            ("uint8_data", np.uint8),
        ]
    }
    data = types["audio_common_msgs/msg/AudioData"](float32_data=np.asarray(samples, np.float32), **arrays)
    info = types["audio_common_msgs/msg/AudioInfo"](format=1, channels=channels, rate=rate, chunk=0)
    stamp = types["builtin_interfaces/msg/Time"](sec=100, nanosec=0)
    header = types["std_msgs/msg/Header"](stamp=stamp, frame_id="mic")
    return types["audio_common_msgs/msg/AudioStamped"](header=header, audio=types["audio_common_msgs/msg/Audio"](
        audio_data=data, info=info))  # fmt: skip


@pytest.mark.parametrize(("rate", "channels"), [(0, 1), (1, 1), (MIN_RATE - 1, 1), (MAX_RATE + 1, 1), (-16_000, 1),
                                                (16_000, 0), (16_000, -1), (16_000, MAX_CHANNELS + 1)])  # fmt: skip
def test_implausible_rates_and_channel_counts_are_refused_before_resampling(rate, channels) -> None:
    # A 1 Hz stream would turn each sample into 16,000: a few kB message into hundreds of MB.
    with pytest.raises(ConversionError, match="supported") as error:
        AudioStreamConverter("audio", flavour="mgonzs13").convert(float_audio(np.zeros(4 * max(channels, 1)), rate,
                                                                              channels))  # fmt: skip
    assert "\n" not in str(error.value) and "audio" in str(error.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinite_samples_are_refused(bad) -> None:
    samples = np.zeros(1600, np.float32)
    samples[7] = bad
    with pytest.raises(ConversionError, match="1 NaN or infinite samples"):
        AudioStreamConverter("audio", flavour="mgonzs13").convert(float_audio(samples))


def test_float_samples_beyond_full_scale_are_clipped() -> None:
    samples = np.full(16_000, 3.0e38, np.float32)
    samples[::2] = -1e9
    chunks = AudioStreamConverter("audio", flavour="mgonzs13").convert(float_audio(samples))
    out = np.concatenate([c.samples for c in chunks])
    assert out.size > 0 and np.isfinite(out).all() and np.abs(out).max() <= 1.01


def compressed(data: bytes) -> object:
    header = SimpleNamespace(stamp=SimpleNamespace(sec=1, nanosec=0), frame_id="camera")
    return SimpleNamespace(header=header, format="png", data=np.frombuffer(data, np.uint8))


def test_compressed_sizes_are_read_from_the_headers() -> None:
    rgb = np.zeros((24, 40, 3), np.uint8)
    assert compressed_size(np.frombuffer(encode_png(rgb), np.uint8)) == (40, 24)
    assert compressed_size(np.frombuffer(encode_jpeg(rgb), np.uint8)) == (40, 24)
    assert compressed_size(np.frombuffer(b"\xff\xd8\xff", np.uint8)) is None  # header cut short: no claim


def test_a_png_claiming_ten_gigapixels_is_refused_without_decoding() -> None:
    png = encode_png(np.zeros((4, 4, 3), np.uint8))
    bomb = png[:16] + (100_000).to_bytes(4, "big") + (100_000).to_bytes(4, "big") + png[24:]
    with pytest.raises(ConversionError, match=r"png frame of 100000x100000 pixels \(at most 33177600 pixels\)"):
        frame_payload(compressed(bomb), "camera")


def test_a_jpeg_claiming_more_than_8k_is_refused_and_8k_itself_is_not() -> None:
    jpeg = bytearray(encode_jpeg(np.zeros((8, 8, 3), np.uint8)))
    at = 2
    while jpeg[at + 1] not in (0xC0, 0xC2):  # walk to the start-of-frame segment
        at += 2 + int.from_bytes(jpeg[at + 2 : at + 4], "big")
    jpeg[at + 5 : at + 9] = (4320).to_bytes(2, "big") + (7680).to_bytes(2, "big")  # height, width: 8K UHD
    assert compressed_size(np.frombuffer(bytes(jpeg), np.uint8)) == (7680, 4320)
    assert MAX_COMPRESSED_PIXELS == 7680 * 4320
    frame_payload(compressed(bytes(jpeg)), "camera")  # at the limit: accepted (decoding it fails cleanly)
    jpeg[at + 5 : at + 7] = (4321).to_bytes(2, "big")
    with pytest.raises(ConversionError, match="jpeg frame of 7680x4321 pixels"):
        frame_payload(compressed(bytes(jpeg)), "camera")


def test_a_truncated_frame_fails_to_decode_with_one_line() -> None:
    jpeg = encode_jpeg(np.zeros((16, 16, 3), np.uint8))
    payload = frame_payload(compressed(jpeg[: len(jpeg) // 2]), "camera")
    with pytest.raises(ConversionError) as error:
        decode_frame(payload)
    assert "\n" not in str(error.value)


class TestStampGate:
    """One stray stamp is dropped; a source whose clock really moved is followed after one second."""

    gate = staticmethod(lambda: StampGate(jump_ns=5 * NS, confirm_ns=NS))

    def test_stamps_near_the_stream_clock_pass(self) -> None:
        gate = self.gate()
        assert gate.check(100 * NS, None, 0) == "ok"  # no stream clock yet: anything starts it
        assert gate.check(104 * NS, 100 * NS, 0) == "ok"
        assert gate.check(96 * NS, 100 * NS, 0) == "ok"

    def test_a_single_stray_stamp_is_an_outlier_and_changes_nothing(self) -> None:
        gate = self.gate()
        assert gate.check(10**9 * NS, 100 * NS, 0) == "outlier"
        assert gate.check(100 * NS, 100 * NS, 10 * NS) == "ok"  # the stream goes on; the stray is forgotten
        assert gate.check(10**9 * NS, 100 * NS, 11 * NS) == "outlier"

    def test_outliers_that_agree_for_a_second_are_a_new_clock(self) -> None:
        gate = self.gate()
        assert gate.check(5000 * NS, 100 * NS, 0) == "outlier"
        assert gate.check(5000 * NS + NS // 2, 100 * NS, NS // 2) == "outlier"
        assert gate.check(5001 * NS, 100 * NS, NS) == "new clock"

    def test_outliers_that_disagree_with_each_other_never_become_a_clock(self) -> None:
        gate = self.gate()
        verdicts = {gate.check((1000 + 100 * k) * NS, 100 * NS, k * NS) for k in range(20)}
        assert verdicts == {"outlier"}
