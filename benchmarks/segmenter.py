"""Segmenter throughput and the cost of frames it does not use.

Feeds 30 fps 640x480 JPEG CompressedImage frames and 16 kHz audio in 512-sample chunks for 10 minutes of stream
time (1 minute with --quick) through `frame_payload` + `Segmenter`, exactly as the node's callbacks do, and
measures in the same run:

- stream_x_realtime: stream-seconds processed per wall-second;
- skip_cost_ratio: wall cost of ingesting a frame that is not chosen / cost of one that is chosen (ingest plus
  its decode). Goal <= 0.02: unsampled frames must be nearly free.
"""

from __future__ import annotations

import time

import numpy as np

from vispeak_ros.core.clock import NS_PER_S
from vispeak_ros.core.segmenter import Segmenter
from vispeak_ros.ros import audio_common
from vispeak_ros.ros.conversions.image import decode_frame, frame_payload, rgb_to_compressed_msg_fields

DESCRIPTION = "30 fps 640x480 JPEG + 16 kHz audio through the segmenter: stream_x_realtime, skip_cost_ratio"

FPS = 30
CHUNK = 512
T0 = 1_700_000_000 * NS_PER_S


def _messages(store, count: int) -> list:
    """A few distinct camera messages, reused in turn (encoding 18,000 JPEGs would dominate the run)."""
    types = store.types
    rng = np.random.default_rng(0)
    messages = []
    for i in range(count):
        image = np.clip(rng.normal(128, 40, (480, 640, 3)), 0, 255).astype(np.uint8)
        image[:, i * 20 : i * 20 + 40] = 255
        header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](0, 0), frame_id="camera")
        fields = rgb_to_compressed_msg_fields(image, "jpeg", quality=85)
        messages.append(types["sensor_msgs/msg/CompressedImage"](header=header, **fields))
    return messages


def run(quick: bool) -> dict:
    seconds = 60 if quick else 600
    store = audio_common.typestore("mgonzs13")
    messages = _messages(store, 8)
    decode_ns: list[int] = []

    def timed_decode(payload):
        start = time.perf_counter_ns()
        frame = decode_frame(payload)
        decode_ns.append(time.perf_counter_ns() - start)
        return frame

    segmenter = Segmenter(decode_frame=timed_decode)
    audio = (0.1 * np.sin(np.arange(CHUNK) / 5.0)).astype(np.float32)
    ingest_plain: list[int] = []  # frame ingests that closed no segment (no decode inside)
    ingest_closing: list[int] = []  # frame ingests that closed a segment (its chosen frame decoded inside)
    n_frames = seconds * FPS
    chunks_per_frame = 16_000 / FPS / CHUNK
    next_chunk = 0
    wall_start = time.perf_counter()
    for i in range(n_frames):
        stamp = T0 + i * NS_PER_S // FPS
        start = time.perf_counter_ns()
        payload = frame_payload(messages[i % len(messages)], "camera/image_raw/compressed")
        closed = segmenter.add_frame(stamp, payload)
        elapsed = time.perf_counter_ns() - start
        (ingest_closing if closed else ingest_plain).append(elapsed)
        while next_chunk <= (i + 1) * chunks_per_frame:
            segmenter.add_audio(T0 + next_chunk * CHUNK * NS_PER_S // 16_000, audio)
            next_chunk += 1
    segmenter.flush()
    wall = time.perf_counter() - wall_start

    skipped_cost = float(np.median(ingest_plain))
    sampled_cost = skipped_cost + float(np.median(decode_ns))
    stats = segmenter.stats
    return {
        "stream_s": seconds,
        "segments": stats.segments_closed,
        "frames": stats.frames_in,
        "decoded": len(decode_ns),
        "unsampled_frame_us": skipped_cost / 1e3,
        "sampled_frame_us": sampled_cost / 1e3,
        "stream_x_realtime": seconds / wall,
        "skip_cost_ratio": skipped_cost / sampled_cost,
    }
