"""Frames of one benchmark clip, chosen as the official harness chooses them (frames only: it feeds no audio).

Video files (the official harness's sampler, re-implemented; decoding with PyAV): with `fps` the video's average
frame rate, frames `int(start * fps)` to `min(int(end * fps), n_frames - 1)` (the whole video when the annotation
gives no start/end), every `round(fps)`-th one (1 fps); more than 64 are thinned to 64 by picking evenly spaced
indices (`linspace(..., dtype=int)`); fewer than 4 are replaced by 4 evenly spaced frames of the range. A frame's
time is `frame_index / fps`, in seconds of the whole video (what annotations and predictions use).

rosbag2 recordings: the camera topic through the same conversions and segmenter as the node
(`vispeak_ros.tools.bag_source.read_segments`, frame policy `official`: the first frame at or after each second),
times in seconds from the recording's first stamp; the same start/end window and thinning to 64. A clip shorter
than 4 s gives fewer than 4 frames here (the bag path never samples below one frame per second).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_FRAMES = 64  # MAX_IMAGE_LENGTH 16 x pooling 2 x 2 (the s2/s3 setting)
MIN_FRAMES = 4
SAMPLE_FPS = 1


class ClipError(ValueError):
    """A video or recording cannot be read for a clip; the message names the file."""


@dataclass
class Clip:
    frames: list[np.ndarray]  # RGB uint8, H x W x 3
    times: list[float]  # seconds of the video (or of the recording, from its first stamp)


def sample_positions(
    n_frames: int,
    fps: float,
    start: float | None,
    end: float | None,
    max_frames: int = MAX_FRAMES,
    min_frames: int = MIN_FRAMES,
) -> list[int]:
    """Frame indices the official sampler picks (see the module docstring)."""
    if n_frames <= 0 or fps <= 0:
        raise ClipError(f"a video needs frames and a positive frame rate (got {n_frames} frames at {fps} fps)")
    first = 0 if start is None else int(start * fps)
    last = int(min(1_000_000_000 if end is None else end * fps, n_frames - 1))
    if last < first:
        raise ClipError(f"empty clip: frames {first}..{last} (start {start}, end {end}, {n_frames} frames)")
    stride = max(1, round(fps / SAMPLE_FPS))
    every = list(range(first, last + 1, stride))
    if len(every) > max_frames:
        return [every[i] for i in np.linspace(0, len(every) - 1, num=max_frames, dtype=int)]
    if len(every) < min_frames:
        return [int(i) for i in np.linspace(first, last, num=min_frames, dtype=int)]
    return every


def thin(times: list[float], max_frames: int = MAX_FRAMES) -> list[int]:
    """Indices keeping at most `max_frames` evenly spaced entries (as the sampler thins)."""
    if len(times) <= max_frames:
        return list(range(len(times)))
    return [int(i) for i in np.linspace(0, len(times) - 1, num=max_frames, dtype=int)]


def read_video(path: str | Path, start: float | None = None, end: float | None = None) -> Clip:
    """The clip's frames from a video file (any container and codec FFmpeg reads)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise ClipError(f"video not found: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ClipError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame and slice threads: long clips are decoded whole to reach 64 frames
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            n_frames = int(stream.frames or 0)
            if n_frames <= 0:  # no frame count in the container: count the packets
                n_frames = sum(1 for packet in container.demux(stream) if packet.size)
                container.seek(0)
            positions = sample_positions(n_frames, fps, start, end)
            wanted: dict[int, list[int]] = {}
            for slot, position in enumerate(positions):
                wanted.setdefault(position, []).append(slot)
            frames: list[np.ndarray | None] = [None] * len(positions)
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted:
                    rgb = frame.to_ndarray(format="rgb24")
                    for slot in wanted[index]:
                        frames[slot] = rgb
                if index >= positions[-1]:
                    break
    except ClipError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise ClipError(f"{path}: cannot decode: {error}") from None
    kept = [(f, p / fps) for f, p in zip(frames, positions, strict=True) if f is not None]
    if not kept:
        raise ClipError(f"{path}: none of the sampled frames could be decoded")
    return Clip([f for f, _ in kept], [t for _, t in kept])


def read_bag(
    path: str | Path, start: float | None = None, end: float | None = None, camera_topic: str | None = None
) -> Clip:
    """The clip's frames from a rosbag2 recording (one per second, the first at or after each second)."""
    from vispeak_ros.core.segmenter import FramePolicy, SegmenterConfig
    from vispeak_ros.tools.bag_source import read_segments

    frames: list[np.ndarray] = []
    times: list[float] = []
    origin: int | None = None
    config = SegmenterConfig(frame_policy=FramePolicy.OFFICIAL, expect_audio=False)  # frames only: no audio wait
    try:
        for segment in read_segments(path, config=config, camera_topic=camera_topic):
            if origin is None:
                origin = segment.start_ns
            if segment.frame is None or segment.frame_stamp_ns is None:
                continue
            t = (segment.frame_stamp_ns - origin) / 1e9
            if start is not None and t < start - 1e-6:
                continue
            if end is not None and t > end + 1e-6:
                break
            frames.append(segment.frame)
            times.append(t)
    except ValueError as error:  # RecordingError and conversion errors carry the file's name
        raise ClipError(str(error)) from None
    if not frames:
        raise ClipError(f"{path}: no camera frame between {start or 0.0} s and {end if end is not None else 'the end'}")
    keep = thin(times)
    return Clip([frames[i] for i in keep], [times[i] for i in keep])


def is_recording(path: Path) -> bool:
    """A rosbag2 folder (metadata.yaml) or a bare .mcap / .db3 file."""
    return (path.is_dir() and (path / "metadata.yaml").is_file()) or path.suffix in (".mcap", ".db3")


def read_clip(path: str | Path, start: float | None = None, end: float | None = None) -> Clip:
    path = Path(path)
    if not path.exists():
        raise ClipError(f"video or recording not found: {path}")
    return read_bag(path, start, end) if is_recording(path) else read_video(path, start, end)
