"""Cuts two independent input streams (camera frames, audio chunks) into one-second segments.

ViSpeak sees the world in segments: one frame plus exactly one second of 16 kHz mono audio (plus any user text
that arrived). Camera and microphone come from different topics at different rates, with their own latencies,
so the segmenter keys everything by stamp (stream time) and closes segment k on a watermark:

- **complete**: both expected inputs have passed the segment's end (a frame stamped at or after the end
  arrived, and audio samples up to the end were written);
- **partial**: otherwise, once any input (or `advance(now)`) shows stream time `max_input_latency_s` past the
  segment's end. A partial segment has whatever arrived in time; the rest is missing video or silence.

Frame choice: `latest` (live default) takes the newest frame in [start, end); `official` takes the first frame
at or after the start, as the official 1 fps sampler does. Frames are kept as undecoded payloads, at most one
candidate per open segment, and only the chosen frame is ever decoded, when its segment closes.

Bad stamps never raise: backwards and duplicate frames, audio that overlaps what was already written, and
input for segments that already closed are dropped and counted in `stats`. Memory is bounded: at most
`max_open_segments` segments are open (each holds one frame payload and one second of audio); input that would
open more force-closes the oldest ones first (flagged partial), and after `max_gap_segments` empty segments
in a row (a stream gap) the segmenter skips ahead instead of emitting more empty ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

import numpy as np

from vispeak_ros.core.clock import NS_PER_S, StreamClock

SAMPLE_RATE = 16_000
SAMPLES_PER_SEGMENT = SAMPLE_RATE  # one second


class FramePolicy(Enum):
    LATEST = "latest"  # newest frame in the segment: what the robot sees now (live default)
    OFFICIAL = "official"  # first frame at or after the segment start, as ViSpeak's 1 fps sampler


@dataclass(frozen=True)
class SegmenterConfig:
    frame_policy: FramePolicy = FramePolicy.LATEST
    max_input_latency_s: float = 0.5
    expect_video: bool = True
    expect_audio: bool = True
    audio_jitter_tolerance_s: float = 0.05
    max_open_segments: int = 8
    max_gap_segments: int = 10
    max_texts_per_segment: int = 8

    def __post_init__(self) -> None:
        if isinstance(self.frame_policy, str):
            try:
                object.__setattr__(self, "frame_policy", FramePolicy(self.frame_policy))
            except ValueError:
                allowed = ", ".join(p.value for p in FramePolicy)
                raise ValueError(f"frame_policy must be one of {allowed}, got {self.frame_policy!r}") from None
        checks = {
            "max_input_latency_s": (self.max_input_latency_s, 0.0, 10.0),
            "audio_jitter_tolerance_s": (self.audio_jitter_tolerance_s, 0.0, 0.5),
            "max_open_segments": (self.max_open_segments, 2, 600),
            "max_gap_segments": (self.max_gap_segments, 0, 3600),
            "max_texts_per_segment": (self.max_texts_per_segment, 1, 1000),
        }
        for name, (value, low, high) in checks.items():
            if not low <= value <= high:
                raise ValueError(f"segmenter {name} must be in [{low}, {high}], got {value}")
        if not (self.expect_video or self.expect_audio):
            raise ValueError("segmenter needs at least one input: expect_video or expect_audio must be true")


@dataclass(frozen=True)
class TimedText:
    stamp_ns: int
    text: str


@dataclass(frozen=True)
class Segment:
    """One second of stream: what the model consumes in one step."""

    index: int  # 0 = the segment starting at the stream's first stamp
    start_ns: int
    end_ns: int
    frame: Any  # the decoded frame (RGB uint8 HxWx3 with the usual decoder), None when missing
    frame_stamp_ns: int | None  # the chosen frame's own stamp
    audio: np.ndarray  # float32, exactly SAMPLES_PER_SEGMENT samples, zeros where nothing arrived
    audio_coverage: float  # fraction of the second covered by received audio, 0..1
    texts: tuple[TimedText, ...]
    partial: bool  # closed by the latency timeout (or forced), not because every input passed its end

    @property
    def missing_video(self) -> bool:
        return self.frame is None

    @property
    def silent_audio(self) -> bool:
        return self.audio_coverage == 0.0


@dataclass
class SegmenterStats:
    """Counters for diagnostics; every input is counted once as used, skipped or dropped."""

    frames_in: int = 0
    frames_used: int = 0
    frames_skipped: int = 0  # arrived in time but another frame was chosen for the segment
    frames_backwards: int = 0
    frames_duplicate: int = 0
    frames_late: int = 0  # their segment had already closed
    decode_errors: int = 0
    audio_chunks_in: int = 0
    audio_chunks_backwards: int = 0  # entirely before audio already written
    audio_overlaps: int = 0  # partly before audio already written; the overlap was trimmed
    audio_gaps: int = 0  # a chunk started later than the previous one ended (silence in between)
    audio_samples_late: int = 0  # samples for segments that had already closed
    texts_in: int = 0
    texts_deferred: int = 0  # arrived for a closed segment; attached to the next open one
    texts_dropped: int = 0
    segments_closed: int = 0
    segments_partial: int = 0
    segments_forced: int = 0  # closed early to keep at most max_open_segments open
    segments_skipped: int = 0  # empty segments not emitted inside a long gap
    max_open: int = 0
    last_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class _OpenSegment:
    index: int
    frame_payload: Any = None
    frame_stamp_ns: int | None = None
    audio: np.ndarray | None = None
    audio_filled: int = 0
    texts: list[TimedText] = field(default_factory=list)


class Segmenter:
    """Feed frames, audio and text in any interleaving; each call returns the segments it closed, in order.

    `decode_frame(payload)` turns a stored frame payload into the frame the model gets; it is called exactly
    once per chosen frame. Without it, payloads are passed through as they are.
    """

    def __init__(
        self,
        config: SegmenterConfig | None = None,
        decode_frame: Callable[[Any], Any] | None = None,
    ) -> None:
        self.config = config or SegmenterConfig()
        self.stats = SegmenterStats()
        self._decode = decode_frame
        self._latency_ns = round(self.config.max_input_latency_s * NS_PER_S)
        self._jitter_samples = round(self.config.audio_jitter_tolerance_s * SAMPLE_RATE)
        self.reset()

    def reset(self) -> None:
        """Forget the stream (e.g. the clock jumped back); counters are kept."""
        self.clock = StreamClock()
        self._open: dict[int, _OpenSegment] = {}
        self._next = 0  # index of the oldest segment not yet closed
        self._last_frame_ns: int | None = None
        self._audio_next: int | None = None  # absolute sample index right after the last written sample
        self._now_ns: int | None = None
        self._empty_run = 0
        self._out: list[Segment] = []

    @property
    def next_index(self) -> int:
        """Index of the next segment that will be emitted."""
        return self._next

    @property
    def open_segments(self) -> int:
        return len(self._open)

    # ---- inputs -------------------------------------------------------------------------------------------

    def add_frame(self, stamp_ns: int, payload: Any) -> list[Segment]:
        """A camera frame (undecoded payload) stamped at `stamp_ns`."""
        stats = self.stats
        stats.frames_in += 1
        stamp = int(stamp_ns)
        if self._last_frame_ns is not None and stamp <= self._last_frame_ns:
            if stamp == self._last_frame_ns:
                stats.frames_duplicate += 1
            else:
                stats.frames_backwards += 1
            return self._take()
        self.clock.anchor(stamp)
        self._last_frame_ns = stamp
        index = self.clock.segment_of(stamp)
        if index < self._next:
            stats.frames_late += 1
            return self._close_ready()
        segment = self._segment(index)  # the newest index always stays open
        if segment.frame_payload is None:
            segment.frame_payload, segment.frame_stamp_ns = payload, stamp
        elif self.config.frame_policy is FramePolicy.LATEST:
            segment.frame_payload, segment.frame_stamp_ns = payload, stamp
            stats.frames_skipped += 1
        else:
            stats.frames_skipped += 1
        return self._close_ready()

    def add_audio(self, stamp_ns: int, samples: np.ndarray) -> list[Segment]:
        """16 kHz mono float32 samples whose first sample is at `stamp_ns`."""
        samples = np.asarray(samples)
        if samples.ndim != 1 or samples.dtype != np.float32:
            raise ValueError(
                f"segmenter audio must be 1-D float32 at {SAMPLE_RATE} Hz, got {samples.dtype} {samples.shape}"
            )
        stats = self.stats
        stats.audio_chunks_in += 1
        if samples.size == 0:
            return self._take()
        self.clock.anchor(int(stamp_ns))
        start = self._sample_index(int(stamp_ns))
        if self._audio_next is not None:
            delta = start - self._audio_next
            if abs(delta) <= self._jitter_samples:
                start = self._audio_next  # the usual case: the stream continues where it left off
            elif delta > 0:
                stats.audio_gaps += 1
            elif -delta >= samples.size:
                stats.audio_chunks_backwards += 1
                return self._take()
            else:
                stats.audio_overlaps += 1
                samples, start = samples[-delta:], self._audio_next
        end = start + samples.size
        self._audio_next = end if self._audio_next is None else max(self._audio_next, end)
        self._write_audio(start, samples)
        return self._close_ready()

    def add_text(self, stamp_ns: int, text: str) -> list[Segment]:
        """A user text (question) placed at `stamp_ns`; it joins the segment of its time, or the next open one."""
        stats = self.stats
        stats.texts_in += 1
        self.clock.anchor(int(stamp_ns))
        index = self.clock.segment_of(int(stamp_ns))
        if index < self._next:
            stats.texts_deferred += 1
            index = self._next
        index = min(index, self._next + self.config.max_open_segments - 1)
        segment = self._segment(index)
        if len(segment.texts) >= self.config.max_texts_per_segment:
            stats.texts_dropped += 1
        else:
            segment.texts.append(TimedText(int(stamp_ns), text))
        return self._take()

    def advance(self, now_ns: int) -> list[Segment]:
        """Tell the segmenter that stream time is `now_ns` (e.g. from the node's clock) when inputs stall."""
        if self._now_ns is None or now_ns > self._now_ns:
            self._now_ns = int(now_ns)
        return self._close_ready()

    def flush(self) -> list[Segment]:
        """End of stream: close every open segment (partial where inputs had not passed its end)."""
        if self._open:
            self._close_until(max(self._open) + 1)
        return self._take()

    # ---- internals ----------------------------------------------------------------------------------------

    def _sample_index(self, stamp_ns: int) -> int:
        """Absolute sample index (16 kHz) of a stamp, relative to the stream anchor, rounded to nearest."""
        offset = stamp_ns - (self.clock.anchor_ns or 0)
        return (offset * SAMPLE_RATE + NS_PER_S // 2) // NS_PER_S

    def _write_audio(self, start: int, samples: np.ndarray) -> None:
        if start < 0:  # before the stream anchor
            self.stats.audio_samples_late += min(-start, samples.size)
            samples, start = samples[-start:], 0
        position = 0
        while position < samples.size:
            absolute = start + position
            index, offset = divmod(absolute, SAMPLES_PER_SEGMENT)
            count = min(SAMPLES_PER_SEGMENT - offset, samples.size - position)
            segment = self._segment(index) if index >= self._next else None
            if segment is None:
                self.stats.audio_samples_late += count
            else:
                if segment.audio is None:
                    segment.audio = np.zeros(SAMPLES_PER_SEGMENT, dtype=np.float32)
                segment.audio[offset : offset + count] = samples[position : position + count]
                segment.audio_filled = min(SAMPLES_PER_SEGMENT, segment.audio_filled + count)
            position += count

    def _segment(self, index: int) -> _OpenSegment | None:
        """The open segment `index`, opening it (and force-closing the oldest ones to make room) if needed."""
        segment = self._open.get(index)
        if segment is not None:
            return segment
        oldest_allowed = index - self.config.max_open_segments + 1
        if oldest_allowed > self._next:
            before = self.stats.segments_closed
            self._close_until(oldest_allowed)
            self.stats.segments_forced += self.stats.segments_closed - before
        if index < self._next:
            return None
        segment = self._open[index] = _OpenSegment(index)
        self.stats.max_open = max(self.stats.max_open, len(self._open))
        return segment

    def _targets(self) -> tuple[int, int]:
        """(segments below this index are complete, segments below this index have timed out)."""
        unbounded = 1 << 62
        video = unbounded
        if self.config.expect_video:
            video = -1 if self._last_frame_ns is None else self.clock.segment_of(self._last_frame_ns)
        audio = unbounded
        if self.config.expect_audio:
            audio = -1 if self._audio_next is None else self._audio_next // SAMPLES_PER_SEGMENT
        complete = min(video, audio)
        stamps = [self._last_frame_ns, self._now_ns]
        if self._audio_next is not None:
            stamps.append(self.clock.anchor_ns + self._audio_next * NS_PER_S // SAMPLE_RATE)
        known = [s for s in stamps if s is not None]
        timed_out = self.clock.segment_of(max(known) - self._latency_ns) if known else -1
        return complete, timed_out

    def _close_ready(self) -> list[Segment]:
        if self.clock.anchored:
            complete, timed_out = self._targets()
            self._close_until(max(complete, timed_out))
        return self._take()

    def _close_until(self, target: int) -> None:
        """Close every segment with index < target, in order."""
        complete = self._targets()[0] if self.clock.anchored else -1
        while self._next < target:
            index = self._next
            segment = self._open.pop(index, None)
            if segment is None and self._empty_run >= self.config.max_gap_segments:
                upcoming = [i for i in self._open if i < target]
                resume = min(upcoming) if upcoming else target
                self.stats.segments_skipped += resume - index
                self._next = resume
                continue
            self._empty_run = self._empty_run + 1 if segment is None else 0
            self._emit(segment or _OpenSegment(index), partial=index >= complete)
            self._next += 1

    def _emit(self, segment: _OpenSegment, partial: bool) -> None:
        stats = self.stats
        frame = None
        if segment.frame_payload is not None:
            stats.frames_used += 1
            try:
                frame = segment.frame_payload if self._decode is None else self._decode(segment.frame_payload)
            except Exception as error:  # a corrupt frame must not stop the stream: count it, keep going
                stats.decode_errors += 1
                stats.last_error = f"segment {segment.index}: frame decode failed: {error}"
                frame = None
        audio = segment.audio if segment.audio is not None else np.zeros(SAMPLES_PER_SEGMENT, dtype=np.float32)
        stats.segments_closed += 1
        stats.segments_partial += int(partial)
        self._out.append(
            Segment(
                index=segment.index,
                start_ns=self.clock.segment_start(segment.index),
                end_ns=self.clock.segment_end(segment.index),
                frame=frame,
                frame_stamp_ns=segment.frame_stamp_ns if frame is not None else None,
                audio=audio,
                audio_coverage=segment.audio_filled / SAMPLES_PER_SEGMENT,
                texts=tuple(segment.texts),
                partial=partial,
            )
        )

    def _take(self) -> list[Segment]:
        out, self._out = self._out, []
        return out
