"""Plain video + wav as a replay source: the same segmenter and model input as a recording from a robot.

The video is decoded with PyAV (any container and codec FFmpeg reads); frames are stamped from their presentation
times. Audio comes from `--audio FILE`, else from a `.wav` with the video's name beside it, else from the video's
own audio track, else there is none (the model then sees video only). Any sample rate and channel count: PyAV
decodes, `core.resample.StreamResampler` (soxr) makes 16 kHz mono. Stream time starts at 0 (1970-01-01 in the
output recording), the video's first frame; the two inputs are merged by stamp, as a robot's topics would arrive.

Frames are converted to RGB only for the one frame per second the segmenter chooses. The output recording gets
what the model saw instead of the input topics a bag would have: each segment's chosen frame as JPEG
(`sensor_msgs/CompressedImage` on /camera/image_raw/compressed) and its second of 16 kHz int16 audio (mgonzs13
`audio_common_msgs/AudioStamped` on /audio), so that the output replays again and opens in Foxglove.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vispeak_ros.core.clock import NS_PER_S
from vispeak_ros.core.segmenter import Segment, Segmenter, SegmenterConfig
from vispeak_ros.tools.bag_source import RecordingError, SourceStats

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".flv", ".ogv")
CAMERA_TOPIC = "/camera/image_raw/compressed"
AUDIO_TOPIC = "/audio"


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


class VideoRecording:
    """A video file (plus optional audio file) with the `Recording`-like surface replay needs."""

    kind = "video"

    def __init__(self, video: str | Path, audio: str | Path | None = None) -> None:
        import av

        self.path = Path(video)
        if not self.path.is_file():
            raise RecordingError(f"recording not found: {self.path}")
        self.problems: list[str] = []
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise RecordingError(f"{self.path}: no video stream (no camera)")
                stream = container.streams.video[0]
                self.width, self.height = stream.codec_context.width, stream.codec_context.height
                duration = container.duration / 1e6 if container.duration else None
                has_own_audio = bool(container.streams.audio)
        except RecordingError:
            raise
        except Exception as error:  # PyAV raises its own error types for unreadable files
            raise RecordingError(f"{self.path}: cannot open as a video: {_one_line(error)}") from None
        beside = self.path.with_suffix(".wav")
        if audio is not None:
            self.audio_path: Path | None = Path(audio)
            if not self.audio_path.is_file():
                raise RecordingError(f"audio file not found: {self.audio_path}")
        elif beside.is_file():
            self.audio_path = beside
        else:
            self.audio_path = self.path if has_own_audio else None
        self.start_ns = 0
        self.end_ns = round(duration * NS_PER_S) if duration else None
        self.kind = "video" if self.audio_path is None else f"video + {self.audio_path.suffix.lstrip('.') or 'audio'}"

    @property
    def name(self) -> str:
        return self.path.stem

    def close(self) -> None:
        """Nothing stays open between calls."""

    # ---- inputs ------------------------------------------------------------------------------------------------
    def _frames(self) -> Iterator[tuple[int, int, Any]]:
        import av

        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            base = stream.time_base
            try:
                for frame in container.decode(stream):
                    if frame.pts is None:
                        continue
                    yield round(float(frame.pts * base) * NS_PER_S), 0, frame
            except av.error.FFmpegError as error:
                self.problems.append(f"{self.path}: video decoding stopped: {_one_line(error)}; the rest is skipped")

    def _audio(self) -> Iterator[tuple[int, int, np.ndarray]]:
        import av

        from vispeak_ros.core.resample import StreamResampler

        if self.audio_path is None:
            return
        try:
            container = av.open(str(self.audio_path))
        except Exception as error:
            raise RecordingError(f"{self.audio_path}: cannot open as audio: {_one_line(error)}") from None
        with container:
            if not container.streams.audio:
                raise RecordingError(f"{self.audio_path}: no audio stream")
            stream = container.streams.audio[0]
            resampler: StreamResampler | None = None
            written = 0  # 16 kHz samples emitted
            start_ns = 0
            try:
                for frame in container.decode(stream):
                    array = frame.to_ndarray()
                    channels = len(frame.layout.channels)
                    samples = array.T if frame.format.is_planar else array.reshape(-1, channels)
                    if resampler is None:
                        resampler = StreamResampler(int(frame.sample_rate), channels)
                        if frame.pts is not None and frame.time_base is not None:
                            start_ns = round(float(frame.pts * frame.time_base) * NS_PER_S)
                    out = resampler.process(np.ascontiguousarray(samples))
                    if out.size:
                        yield start_ns + written * NS_PER_S // 16_000, 1, out
                        written += out.size
            except av.error.FFmpegError as error:
                self.problems.append(f"{self.audio_path}: audio decoding stopped: {_one_line(error)}; the rest skipped")
            if resampler is not None:
                tail = resampler.flush()
                if tail.size:
                    yield start_ns + written * NS_PER_S // 16_000, 1, tail

    def segments(
        self,
        stats: SourceStats | None = None,
        segmenter_options: dict | None = None,
        on_segment: Callable[[Segment], None] | None = None,
    ) -> Iterator[Segment]:
        """The stream's segments; `on_segment` sees each one first (to record what the model saw)."""
        stats = stats if stats is not None else SourceStats()
        config = SegmenterConfig(expect_audio=self.audio_path is not None, **(segmenter_options or {}))
        segmenter = Segmenter(config, decode_frame=lambda frame: frame.to_ndarray(format="rgb24"))
        stats.segmenter = segmenter.stats
        merged = heapq.merge(self._frames(), self._audio(), key=lambda item: (item[0], item[1]))
        for stamp, kind, item in merged:
            stats.messages += 1
            topic = CAMERA_TOPIC if kind == 0 else AUDIO_TOPIC
            stats.per_topic[topic] = stats.per_topic.get(topic, 0) + 1
            closed = segmenter.add_frame(stamp, item) if kind == 0 else segmenter.add_audio(stamp, item)
            for segment in closed:
                if on_segment is not None:
                    on_segment(segment)
                yield segment
        for segment in segmenter.flush():
            if on_segment is not None:
                on_segment(segment)
            yield segment


def segment_messages(store: Any, segment: Segment) -> list[tuple[str, str, int, Any]]:
    """(topic, type, record ns, message) of what the model saw in one segment: its frame (JPEG) and its audio."""
    from vispeak_ros.training.recordings import image_message, mgonzs13_audio_message

    out = []
    if segment.frame is not None:
        stamp = segment.frame_stamp_ns if segment.frame_stamp_ns is not None else segment.start_ns
        msgtype, msg = image_message(store, stamp, np.ascontiguousarray(segment.frame), "compressed", 85)
        out.append((CAMERA_TOPIC, msgtype, stamp, msg))
    if segment.audio_coverage > 0:
        pcm = np.round(np.clip(segment.audio, -1.0, 32767 / 32768) * 32768).astype(np.int16)
        msg = mgonzs13_audio_message(store, segment.start_ns, pcm, 16_000)
        out.append((AUDIO_TOPIC, "audio_common_msgs/msg/AudioStamped", segment.start_ns, msg))
    return out
