"""The streaming resampler: rates, channels, sample types, chunking invariance, filter quality, timing."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vispeak_ros.core.resample import OUT_RATE, StreamResampler, to_float32


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def run_chunked(resampler: StreamResampler, x: np.ndarray, chunk: int) -> np.ndarray:
    pieces = [resampler.process(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    pieces.append(resampler.flush())
    return np.concatenate(pieces)


def one_shot(x: np.ndarray, rate: int, channels: int = 1) -> np.ndarray:
    resampler = StreamResampler(rate, channels)
    return np.concatenate([resampler.process(x), resampler.flush()])


def peak_amplitude(y: np.ndarray, rate: int = OUT_RATE) -> float:
    """Amplitude of a sine from its RMS over the middle of the signal (edges hold filter transients)."""
    middle = y[rate // 4 : -rate // 4]
    return float(np.sqrt(2 * np.mean(middle.astype(np.float64) ** 2)))


def test_integer_pcm_is_normalised_to_unit_range():
    assert to_float32(np.array([-32768, 0, 16384, 32767], np.int16)).tolist() == [-1.0, 0.0, 0.5, 32767 / 32768]
    assert to_float32(np.array([-(2**31), 2**30], np.int32)).tolist() == [-1.0, 0.5]
    assert to_float32(np.array([-128, 64], np.int8)).tolist() == [-1.0, 0.5]
    assert to_float32(np.array([0, 128, 192], np.uint8)).tolist() == [-1.0, 0.0, 0.5]
    floats = np.array([0.25, -1.0], np.float64)
    assert to_float32(floats).dtype == np.float32 and to_float32(floats).tolist() == [0.25, -1.0]


@pytest.mark.parametrize("rate", [48_000, 44_100])
@pytest.mark.parametrize("chunk", [512, 1024, 4800])
def test_chunked_processing_equals_one_shot(rate, chunk):
    x = np.random.default_rng(rate + chunk).standard_normal(rate // 2).astype(np.float32) * 0.3
    chunked = run_chunked(StreamResampler(rate), x, chunk)
    reference = one_shot(x, rate)
    assert chunked.shape == reference.shape == (round(len(x) * OUT_RATE / rate),)
    np.testing.assert_allclose(chunked, reference, atol=1e-4)


@settings(derandomize=True, max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=9_600), min_size=0, max_size=12))
def test_any_chunk_boundaries_give_the_same_output(cuts):
    rate = 48_000
    x = np.random.default_rng(7).standard_normal(9_600).astype(np.float32) * 0.3
    resampler = StreamResampler(rate)
    bounds = [0, *sorted(cuts), len(x)]
    pieces = [resampler.process(x[a:b]) for a, b in itertools.pairwise(bounds)]
    pieces.append(resampler.flush())
    np.testing.assert_allclose(np.concatenate(pieces), one_shot(x, rate), atol=1e-4)


@pytest.mark.parametrize("rate", [48_000, 44_100])
def test_impulse_lands_at_its_time_so_stamps_need_no_delay_correction(rate):
    x = np.zeros(rate, np.float32)
    x[rate // 2] = 1.0  # t = 0.5 s
    y = run_chunked(StreamResampler(rate), x, 1000)
    assert int(np.argmax(y)) == OUT_RATE // 2


def test_latency_is_bounded_and_flush_completes_the_count():
    rate = 48_000
    resampler = StreamResampler(rate)
    produced = 0
    for _ in range(rate // 960):
        produced += resampler.process(np.zeros(960, np.float32)).size
        held = resampler.expected_output(resampler.frames_in) - resampler.frames_out
        assert 0 <= held <= 700  # about 40 ms at 16 kHz
    produced += resampler.flush().size
    assert produced == OUT_RATE
    assert resampler.frames_in == resampler.frames_out == 0  # flush resets for a new stream


@pytest.mark.parametrize("rate", [48_000, 44_100])
def test_1khz_tone_keeps_its_amplitude_within_1_percent(rate):
    y = run_chunked(StreamResampler(rate), tone(1000, rate, 1.0, amplitude=0.5), 1024)
    assert peak_amplitude(y) == pytest.approx(0.5, rel=0.01)


def test_9khz_tone_at_48khz_is_attenuated_by_60db():
    y = run_chunked(StreamResampler(48_000), tone(9000, 48_000, 1.0, amplitude=0.5), 1024)
    attenuation_db = 20 * np.log10(0.5 / max(peak_amplitude(y), 1e-12))
    assert attenuation_db >= 60


def test_stereo_is_averaged_to_mono_in_either_layout():
    rate = 48_000
    left, right = tone(440, rate, 0.5, 0.4), tone(1000, rate, 0.5, 0.2)
    frames = np.stack([left, right], axis=1)
    expected = one_shot((left + right) / 2, rate)
    from_2d = run_chunked(StreamResampler(rate, channels=2), frames, 1024)
    from_interleaved = run_chunked(StreamResampler(rate, channels=2), frames.reshape(-1), 2048)
    np.testing.assert_allclose(from_2d, expected, atol=1e-6)
    np.testing.assert_allclose(from_interleaved, expected, atol=1e-6)


def test_int16_stereo_44k1_is_normalised_mixed_and_resampled():
    rate = 44_100
    left = (tone(440, rate, 1.0, 0.5) * 32767).astype(np.int16)
    frames = np.stack([left, left], axis=1)
    y = run_chunked(StreamResampler(rate, channels=2), frames, 4410)
    assert y.dtype == np.float32
    assert peak_amplitude(y) == pytest.approx(0.5, rel=0.01)


def test_16khz_mono_passes_through_unchanged_without_latency():
    x = (np.arange(-1000, 1000) * 16).astype(np.int16)
    resampler = StreamResampler(OUT_RATE)
    y = resampler.process(x)
    np.testing.assert_array_equal(y, x.astype(np.float32) / 32768)
    assert resampler.flush().size == 0
    floats = np.linspace(-1, 1, 100, dtype=np.float32)
    assert not np.shares_memory(resampler.process(floats), floats)


def test_reset_forgets_the_stream():
    rate = 48_000
    x = tone(1000, rate, 0.2)
    resampler = StreamResampler(rate)
    resampler.process(np.ones(4800, np.float32))
    resampler.reset()
    np.testing.assert_allclose(run_chunked(resampler, x, 960), one_shot(x, rate), atol=1e-6)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="sample rate"):
        StreamResampler(0)
    with pytest.raises(ValueError, match="channel"):
        StreamResampler(48_000, channels=0)
    with pytest.raises(ValueError, match="whole number"):
        StreamResampler(48_000, channels=2).process(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="expected 2 channel"):
        StreamResampler(48_000, channels=2).process(np.zeros((4, 3), np.float32))
