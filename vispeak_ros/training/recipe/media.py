"""Decode an item's media the way the official training data loader samples it.

Video (PyAV): frames `int(start * fps)` .. `min(end * fps, n - 1)` every round(fps / framerate) frames, thinned to
`max_frames` (64 = 16 x pooling 2 x 2) or spread to `min_frames` (4 x minimal_image_ratio), the frame sampler of
`vispeak_ros.evaluation.frames`; times are frame_index / fps. Start is `int(video_start_time)` (>= 0), end
`int(video_end_time) + 1`. The video's own audio (16 kHz mono) is cut after each sampled frame into
`round(frame gap / 1 s)` chunks of exactly 1 s (between 1 and `max_video_audio_segment`), fewer where the audio ends.
Images: InternVL dynamic tiling (1..12 tiles of 448 px by the closest aspect ratio, plus a thumbnail when there is
more than one tile). Audio files: 16 kHz mono, zero-padded to whole seconds, at most 32 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vispeak_ros.evaluation.frames import sample_positions
from vispeak_ros.model.config import VisionConfig
from vispeak_ros.model.processors import preprocess_images
from vispeak_ros.training.recipe.formats import Layout

RATE = 16000
MAX_AUDIO_FILE_S = 32


class MediaError(ValueError):
    """A media file cannot be read; the message names the file."""


@dataclass
class MediaOptions:
    """The official data arguments that shape the media (stage YAML `media:` keys)."""

    video_framerate: int = 1
    max_frames: int = 64  # MAX_IMAGE_LENGTH 16 x pooling_size 2 x 2
    min_frames: int = 4  # MIN_IMAGE_LENGTH 4 x minimal_image_ratio (2 in stage 3)
    max_video_audio_segment: int = 2
    min_dynamic_patch: int = 1
    max_dynamic_patch: int = 12
    use_thumbnail: bool = True


@dataclass
class Media:
    """Decoded media of one item: RGB frames/tiles and 1 s waveforms."""

    frames: list[np.ndarray] = field(default_factory=list)
    frame_times: list[float] = field(default_factory=list)
    video_audio: list[list[np.ndarray]] = field(default_factory=list)  # per frame, its 1 s chunks
    images: list[list[Image.Image]] = field(default_factory=list)  # per image, its tiles
    audio_files: list[list[np.ndarray]] = field(default_factory=list)  # per file, its 1 s chunks

    def layout(self) -> Layout:
        return Layout(
            frame_times=tuple(self.frame_times),
            audio_per_frame=tuple(len(c) for c in self.video_audio),
            image_tiles=tuple(len(t) for t in self.images),
            audio_chunks=tuple(len(c) for c in self.audio_files),
        )


def _mono16k(container, path: Path) -> np.ndarray | None:
    import av

    if not container.streams.audio:
        return None
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    parts = []
    for frame in container.decode(container.streams.audio[0]):
        for out in resampler.resample(frame):
            parts.append(out.to_ndarray().reshape(-1))
    for out in resampler.resample(None):
        parts.append(out.to_ndarray().reshape(-1))
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def read_video(path: str | Path, opts: MediaOptions, start: float | None, end: float | None) -> Media:
    """Sampled frames, their times and the audio chunks after each (see the module docstring)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"video not found: {path}")
    first = max(0, int(start)) if start is not None else 0
    last = max(0, int(end) + 1) if end is not None else None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            n_frames = int(stream.frames or 0)
            if n_frames <= 0:
                n_frames = sum(1 for packet in container.demux(stream) if packet.size)
                container.seek(0)
            positions = _positions(n_frames, fps, first, last, opts)
            wanted = set(positions)
            decoded: dict[int, np.ndarray] = {}
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted:
                    decoded[index] = frame.to_ndarray(format="rgb24")
                if index >= positions[-1]:
                    break
        with av.open(str(path)) as container:
            audio = _mono16k(container, path)
    except MediaError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise MediaError(f"{path}: cannot decode: {error}") from None
    kept = [p for p in positions if p in decoded]
    if not kept:
        raise MediaError(f"{path}: none of the sampled frames could be decoded")
    media = Media(frames=[decoded[p] for p in kept], frame_times=[p / fps for p in kept])
    if audio is not None and len(audio):
        gap = (kept[1] - kept[0]) / fps if len(kept) > 1 else 1.0
        per = int(max(min(round(gap / 1.0), opts.max_video_audio_segment), 1))
        for p in kept:
            begin = int(max(p / fps * RATE, 0))
            chunks = []
            for _ in range(per):
                stop = begin + RATE
                if stop > len(audio):
                    break
                chunks.append(audio[begin:stop])
                begin = stop
            media.video_audio.append(chunks)
    return media


def _positions(n_frames: int, fps: float, first: int, last: int | None, opts: MediaOptions) -> list[int]:
    from vispeak_ros.evaluation import frames

    if opts.video_framerate == frames.SAMPLE_FPS:
        return sample_positions(n_frames, fps, first, last, opts.max_frames, opts.min_frames)
    rescaled = fps / opts.video_framerate  # sample_positions strides by round(fps / 1): scale the rate
    picked = sample_positions(n_frames, rescaled, first * opts.video_framerate,
                              None if last is None else last * opts.video_framerate,
                              opts.max_frames, opts.min_frames)  # fmt: skip
    return picked


def read_audio(path: str | Path) -> list[np.ndarray]:
    """An audio file as 1 s chunks at 16 kHz mono, the last zero-padded."""
    import av

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"audio not found: {path}")
    try:
        with av.open(str(path)) as container:
            wave = _mono16k(container, path)
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise MediaError(f"{path}: cannot decode: {error}") from None
    if wave is None or not len(wave):
        raise MediaError(f"{path}: no audio")
    chunks = -(-len(wave) // RATE)
    if chunks > MAX_AUDIO_FILE_S:
        raise MediaError(f"{path}: {chunks} s of audio, the official loader takes at most {MAX_AUDIO_FILE_S} s")
    wave = np.pad(wave, (0, chunks * RATE - len(wave)))
    return [wave[i * RATE : (i + 1) * RATE] for i in range(chunks)]


def tile_image(image: Image.Image, opts: MediaOptions, size: int = 448) -> list[Image.Image]:
    """InternVL dynamic tiling: the grid (i x j tiles, min..max in total) whose aspect ratio is closest to the
    image's (ties: the larger grid when the image has more than half its area), plus a thumbnail."""
    width, height = image.size
    aspect = width / height
    grids = sorted(
        {
            (i, j)
            for n in range(opts.min_dynamic_patch, opts.max_dynamic_patch + 1)
            for i in range(1, n + 1)
            for j in range(1, n + 1)
            if opts.min_dynamic_patch <= i * j <= opts.max_dynamic_patch
        },
        key=lambda g: g[0] * g[1],
    )
    best, best_diff = (1, 1), float("inf")
    for grid in grids:
        diff = abs(aspect - grid[0] / grid[1])
        if diff < best_diff:
            best, best_diff = grid, diff
        elif diff == best_diff and width * height > 0.5 * size * size * grid[0] * grid[1]:
            best = grid
    cols, rows = best
    resized = image.resize((size * cols, size * rows))
    boxes = [(c * size, r * size, (c + 1) * size, (r + 1) * size) for r in range(rows) for c in range(cols)]
    tiles = [resized.crop(box) for box in boxes]
    if opts.use_thumbnail and len(tiles) != 1:
        tiles.append(image.resize((size, size)))
    return tiles


def read_image(path: str | Path, opts: MediaOptions, size: int = 448) -> list[Image.Image]:
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            return tile_image(img.convert("RGB"), opts, size)
    except OSError as error:
        raise MediaError(f"{path}: cannot decode: {error}") from None


def load_media(item: dict, kind: str, opts: MediaOptions, vision: VisionConfig) -> Media:
    """All media of one item (`video`, `image`, `audio` keys; paths already joined with the entry's folders)."""
    media = Media()
    if "video" in item:
        media = read_video(item["video"], opts, item.get("video_start_time"), item.get("video_end_time"))
        if kind == "audio_proactive" and not item.get("use_audio", False):
            media.video_audio = [[] for _ in media.frames]  # the released loader drops the video's audio here
    if "image" in item and kind == "offline":
        files = [item["image"]] if isinstance(item["image"], str) else list(item["image"])
        media.images = [read_image(f, opts, vision.image_size) for f in files]
    if "audio" in item:
        files = [item["audio"]] if isinstance(item["audio"], str) else list(item["audio"])
        media.audio_files = [read_audio(f) for f in files]
    return media


def pixels(media: Media, vision: VisionConfig) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(video frames [N, 3, S, S], per image its tiles [n, 3, S, S]) preprocessed for the vision tower."""
    frames = (
        preprocess_images(media.frames, vision)
        if media.frames
        else torch.zeros(0, 3, vision.image_size, vision.image_size)
    )
    tiles = [preprocess_images(list(t), vision) for t in media.images]
    return frames, tiles
