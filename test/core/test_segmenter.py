"""The segmenter turns two independent, jittery input streams into exact one-second segments."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vispeak_ros.core.clock import NS_PER_S
from vispeak_ros.core.segmenter import SAMPLES_PER_SEGMENT, FramePolicy, Segmenter, SegmenterConfig

MS = 1_000_000
T0 = 1_700_000_000 * NS_PER_S  # a robot's wall-clock stamps, far from zero


def audio_chunk(start_sample: int, n: int) -> np.ndarray:
    """Samples whose value encodes their absolute index, so placement can be checked exactly."""
    return (np.arange(start_sample, start_sample + n) % 10_000).astype(np.float32) / 10_000


def stream_messages(seconds: float, fps: float, chunk: int, audio_delay_ns: int, video_delay_ns: int = 0):
    """(arrival_ns, kind, stamp_ns, payload) for a camera at `fps` and a microphone in `chunk`-sample chunks."""
    messages = []
    n_frames = int(seconds * fps)
    for i in range(n_frames):
        stamp = T0 + round(i * NS_PER_S / fps)
        messages.append((stamp + video_delay_ns, "frame", stamp, i))
    total = int(seconds * 16_000)
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        stamp = T0 + start * NS_PER_S // 16_000
        arrival = T0 + (start + n) * NS_PER_S // 16_000 + audio_delay_ns
        messages.append((arrival, "audio", stamp, audio_chunk(start, n)))
    return sorted(messages, key=lambda m: (m[0], m[1]))


def feed(segmenter: Segmenter, messages) -> list:
    out = []
    for _, kind, stamp, payload in messages:
        if kind == "frame":
            out += segmenter.add_frame(stamp, payload)
        elif kind == "audio":
            out += segmenter.add_audio(stamp, payload)
        else:
            out += segmenter.add_text(stamp, payload)
    return out


class CountingDecoder:
    def __init__(self):
        self.calls = []

    def __call__(self, payload):
        self.calls.append(payload)
        return np.full((4, 4, 3), payload % 256, dtype=np.uint8)


def jitter_arrivals(messages, rng, max_jitter_ns: int):
    """Random network jitter per message; each topic stays in order, the two topics interleave at random."""
    last = {}
    jittered = []
    for arrival, kind, stamp, payload in messages:
        arrival = max(arrival + int(rng.integers(0, max_jitter_ns + 1)), last.get(kind, 0))
        last[kind] = arrival
        jittered.append((arrival, kind, stamp, payload))
    return sorted(jittered, key=lambda m: m[0])


@given(
    seconds=st.integers(3, 10),
    fps=st.sampled_from([1.0, 2.0, 7.5, 15.0, 30.0]),
    chunk=st.sampled_from([160, 512, 1024, 1600, 4800, 8000]),
    audio_delay_ms=st.integers(0, 400),
    video_delay_ms=st.integers(0, 100),
    policy=st.sampled_from(list(FramePolicy)),
    jitter_seed=st.integers(0, 2**16),
)
def test_random_interleavings_give_exact_increasing_complete_segments(
    seconds, fps, chunk, audio_delay_ms, video_delay_ms, policy, jitter_seed
):
    messages = stream_messages(seconds, fps, chunk, audio_delay_ms * MS, video_delay_ms * MS)
    messages = jitter_arrivals(messages, np.random.default_rng(jitter_seed), max_jitter_ns=50 * MS)
    # Each input passes a segment's end at most (chunk length or frame interval + delay + jitter) after it;
    # the watermark waits a little longer than that.
    latency_s = max(chunk / 16_000 + audio_delay_ms / 1000, 1 / fps + video_delay_ms / 1000) + 0.1
    decoder = CountingDecoder()
    config = SegmenterConfig(frame_policy=policy, max_input_latency_s=latency_s, max_open_segments=4)
    segmenter = Segmenter(config, decode_frame=decoder)
    segments = feed(segmenter, messages) + segmenter.flush()

    assert [s.index for s in segments] == list(range(len(segments)))
    assert all(a.start_ns < b.start_ns for a, b in pairwise(segments))
    assert all(s.audio.shape == (SAMPLES_PER_SEGMENT,) and s.audio.dtype == np.float32 for s in segments)
    assert segmenter.stats.max_open <= config.max_open_segments
    whole = [s for s in segments if s.end_ns <= T0 + seconds * NS_PER_S]
    assert len(whole) == seconds
    for s in whole[:-1]:  # the last one may close on flush, before a frame after its end exists
        if segmenter.stats.segments_forced == 0:
            assert not s.partial
        assert s.audio_coverage == 1.0
        np.testing.assert_array_equal(s.audio, audio_chunk(s.index * 16_000, 16_000))
        assert s.frame is not None and s.start_ns <= s.frame_stamp_ns < s.end_ns
    # One decode per chosen frame, never one for a frame that was not chosen.
    assert len(decoder.calls) == segmenter.stats.frames_used == sum(s.frame is not None for s in segments)
    assert segmenter.stats.frames_used + segmenter.stats.frames_skipped == segmenter.stats.frames_in


def test_audio_300ms_behind_video_and_reordered_still_gives_complete_segments():
    messages = stream_messages(6, 30.0, 1024, audio_delay_ns=300 * MS)
    segmenter = Segmenter()
    segments = feed(segmenter, messages)
    assert [s.index for s in segments] == [0, 1, 2, 3, 4]
    assert not any(s.partial for s in segments)
    assert all(s.audio_coverage == 1.0 for s in segments)
    assert segmenter.stats.audio_samples_late == 0


def test_latest_takes_the_newest_frame_and_official_the_first():
    for policy, expected in [(FramePolicy.LATEST, 29), (FramePolicy.OFFICIAL, 0)]:
        segmenter = Segmenter(SegmenterConfig(frame_policy=policy, expect_audio=False))
        out = feed(segmenter, stream_messages(2, 30.0, 16_000, 0))
        assert out[0].frame == expected
        assert out[0].frame_stamp_ns == T0 + round(expected * NS_PER_S / 30)


def test_only_chosen_frames_are_decoded():
    decoder = CountingDecoder()
    segmenter = Segmenter(SegmenterConfig(expect_audio=False), decode_frame=decoder)
    segments = feed(segmenter, stream_messages(5, 30.0, 16_000, 0)) + segmenter.flush()
    assert len(segments) == 5
    assert decoder.calls == [29, 59, 89, 119, 149]
    assert segmenter.stats.frames_skipped == 150 - 5


def test_a_segment_closes_partial_when_one_input_is_later_than_the_latency_bound():
    segmenter = Segmenter(SegmenterConfig(max_input_latency_s=0.5))
    out = segmenter.add_frame(T0, 0)
    out += segmenter.add_audio(T0, audio_chunk(0, 8_000))  # audio stops after 0.5 s
    out += segmenter.add_frame(T0 + 1_200 * MS, 1)  # video at 1.2 s: segment 0 not yet timed out
    assert out == []
    out = segmenter.add_frame(T0 + 1_600 * MS, 2)  # 1.6 s > end 1.0 + 0.5
    assert len(out) == 1 and out[0].partial
    assert out[0].audio_coverage == 0.5
    assert np.all(out[0].audio[8_000:] == 0)


def test_camera_gap_gives_missing_video_segments():
    segmenter = Segmenter(SegmenterConfig(expect_audio=False))
    out = segmenter.add_frame(T0, "a")
    out += segmenter.add_frame(T0 + 4 * NS_PER_S, "b")  # a 4 s hole in the camera stream
    assert [s.index for s in out] == [0, 1, 2, 3]
    assert [s.missing_video for s in out] == [False, True, True, True]


def test_stream_advances_on_the_clock_when_all_inputs_stall():
    segmenter = Segmenter()
    segmenter.add_frame(T0, 0)
    segmenter.add_audio(T0, audio_chunk(0, 16_000))
    assert segmenter.advance(T0 + 1_400 * MS) == []
    out = segmenter.advance(T0 + 1_500 * MS)
    assert [s.index for s in out] == [0]


def test_backwards_and_duplicate_stamps_are_dropped_and_counted():
    segmenter = Segmenter(SegmenterConfig(expect_audio=False))
    segmenter.add_audio(T0, audio_chunk(0, 1_600))
    segmenter.add_audio(T0, audio_chunk(0, 1_600))  # the same chunk again
    segmenter.add_audio(T0 + 20 * MS, audio_chunk(320, 1_600))  # 80 ms overlap, beyond the 50 ms jitter
    segmenter.add_frame(T0 + 500 * MS, "a")
    segmenter.add_frame(T0 + 500 * MS, "dup")
    segmenter.add_frame(T0 + 100 * MS, "back")
    stats = segmenter.stats
    assert (stats.frames_duplicate, stats.frames_backwards) == (1, 1)
    assert (stats.audio_chunks_backwards, stats.audio_overlaps) == (1, 1)
    out = segmenter.flush()
    assert out[0].frame == "a"
    np.testing.assert_array_equal(out[0].audio[:1_920], audio_chunk(0, 1_920))  # the overlap was trimmed


def test_far_late_input_is_dropped_and_counted_not_lost_silently():
    segmenter = Segmenter()
    for k in range(3):
        segmenter.add_frame(T0 + k * NS_PER_S, k)
        segmenter.add_audio(T0 + k * NS_PER_S, audio_chunk(k * 16_000, 16_000))
    segmenter.add_frame(T0 + 3 * NS_PER_S, 3)
    assert segmenter.next_index == 3
    segmenter.add_audio(T0 + 500 * MS, audio_chunk(8_000, 100))  # for segment 0, long closed
    assert segmenter.stats.audio_chunks_backwards == 1


def test_open_segments_stay_bounded_and_long_gaps_are_skipped():
    config = SegmenterConfig(max_open_segments=4, max_gap_segments=3, expect_audio=False)
    segmenter = Segmenter(config)
    out = segmenter.add_frame(T0, 0)
    out += segmenter.add_frame(T0 + 3600 * NS_PER_S, 1)  # the camera comes back an hour later
    assert segmenter.stats.max_open <= 4
    assert [s.index for s in out] == [0, 1, 2, 3]  # then 3,596 empty segments are skipped
    assert segmenter.stats.segments_skipped == 3596
    out = segmenter.add_frame(T0 + 3601 * NS_PER_S, 2)
    assert [s.index for s in out] == [3600]


def test_text_joins_its_segment_or_the_next_open_one():
    segmenter = Segmenter(SegmenterConfig(expect_audio=False))
    segmenter.add_frame(T0, 0)
    segmenter.add_text(T0 + 300 * MS, "what is this?")
    out = segmenter.add_frame(T0 + 1_000 * MS, 1)
    assert [t.text for t in out[0].texts] == ["what is this?"]
    segmenter.add_text(T0 + 200 * MS, "late question")  # segment 0 has closed
    out = segmenter.add_frame(T0 + 2_000 * MS, 2)
    assert [t.text for t in out[0].texts] == ["late question"]
    assert segmenter.stats.texts_deferred == 1


def test_a_corrupt_frame_is_counted_and_the_segment_still_closes():
    def decode(payload):
        raise ValueError("jpeg: premature end of data")

    segmenter = Segmenter(SegmenterConfig(expect_audio=False), decode_frame=decode)
    segmenter.add_frame(T0, b"\xff\xd8")
    out = segmenter.add_frame(T0 + NS_PER_S, b"\xff\xd8")
    assert out[0].missing_video
    assert segmenter.stats.decode_errors == 1
    assert "premature end" in segmenter.stats.last_error


def test_memory_stays_bounded_over_a_long_stream():
    segmenter = Segmenter(SegmenterConfig(max_open_segments=4))
    emitted = 0
    for k in range(600):
        for j in range(5):
            emitted += len(segmenter.add_frame(T0 + k * NS_PER_S + j * 200 * MS, k))
        emitted += len(segmenter.add_audio(T0 + k * NS_PER_S, audio_chunk(k * 16_000, 16_000)))
        assert segmenter.open_segments <= 2
    assert emitted == 599


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_input_latency_s": -1.0}, "max_input_latency_s must be in [0.0, 10.0]"),
        ({"frame_policy": "middle"}, "frame_policy must be one of latest, official"),
        ({"expect_video": False, "expect_audio": False}, "at least one input"),
    ],
)
def test_bad_configuration_is_rejected_with_the_setting_named(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        SegmenterConfig(**kwargs)


def test_audio_of_the_wrong_type_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="1-D float32 at 16000 Hz, got int16"):
        Segmenter().add_audio(T0, np.zeros(10, dtype=np.int16))
