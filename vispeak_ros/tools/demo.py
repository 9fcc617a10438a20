"""vispeak-demo: the main job on the embedded default, no GPU and no ROS needed.

Until the tiny demo model ships, this runs a generated recording through the real input pipeline (message
conversions, streaming resampler, segmenter) and prints every one-second segment it cuts. No model runs yet:
the output says so.

The recording: a 15 fps camera publishing JPEG `sensor_msgs/CompressedImage` of a ball crossing the view, and a
microphone publishing 48 kHz stereo `audio_common_msgs/AudioStamped` (mgonzs13 flavour) chunks that reach us
300 ms after the video, both built as real rosbags messages.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from vispeak_ros.core.clock import NS_PER_S, ns_to_seconds
from vispeak_ros.core.segmenter import FramePolicy, Segment, Segmenter, SegmenterConfig

START_NS = 1_700_000_000 * NS_PER_S  # recordings carry a robot's wall-clock stamps, far from zero
MIC_RATE = 48_000
MIC_CHUNK = 1024
# mgonzs13 AudioData fills only the array matching its format (float32 here); the others stay empty.
UNUSED_AUDIO_FIELDS = {
    "int32_data": np.zeros(0, np.int32),
    "int16_data": np.zeros(0, np.int16),
    "int8_data": np.zeros(0, np.int8),
    "uint8_data": np.zeros(0, np.uint8),
}


@dataclass(frozen=True)
class Arrival:
    """A message as the node would receive it: when it arrives, and on which input."""

    arrival_ns: int
    kind: str  # "camera" | "microphone"
    msg: Any


def _header(store: Any, stamp_ns: int, frame_id: str) -> Any:
    sec, nanosec = divmod(stamp_ns, NS_PER_S)
    types = store.types
    return types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec, nanosec), frame_id=frame_id)


def _camera_frame(t: float, width: int = 320, height: int = 240) -> np.ndarray:
    """A ball crossing a gradient background; its position encodes the time, so frame choice is visible."""
    ys, xs = np.mgrid[0:height, 0:width]
    image = np.stack([xs * 255 // width, ys * 255 // height, np.full_like(xs, 96)], axis=-1).astype(np.uint8)
    cx = int((t * 37) % width)
    cy = height // 2 + int(40 * np.sin(t))
    image[(xs - cx) ** 2 + (ys - cy) ** 2 < 20**2] = (250, 40, 40)
    return image


def generate_recording(seconds: float, fps: float, audio_delay_ms: float, seed: int) -> Iterator[Arrival]:
    """Camera and microphone messages of a `seconds`-long recording, in the order they arrive."""
    from vispeak_ros.ros import audio_common
    from vispeak_ros.ros.conversions.image import rgb_to_compressed_msg_fields

    store = audio_common.typestore("mgonzs13")
    types = store.types
    rng = np.random.default_rng(seed)
    arrivals: list[Arrival] = []
    for i in range(int(seconds * fps)):
        stamp = START_NS + round(i * NS_PER_S / fps)
        fields = rgb_to_compressed_msg_fields(_camera_frame(ns_to_seconds(stamp - START_NS)), "jpeg", quality=80)
        msg = types["sensor_msgs/msg/CompressedImage"](header=_header(store, stamp, "camera"), **fields)
        arrivals.append(Arrival(stamp + int(rng.integers(5, 30)) * 1_000_000, "camera", msg))
    info = types["audio_common_msgs/msg/AudioInfo"](format=1, channels=2, rate=MIC_RATE, chunk=MIC_CHUNK)
    total = int(seconds * MIC_RATE)
    for start in range(0, total - MIC_CHUNK + 1, MIC_CHUNK):
        t = (start + np.arange(MIC_CHUNK)) / MIC_RATE
        tone = 0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.01 * rng.standard_normal(MIC_CHUNK)
        stereo = np.stack([tone, 0.5 * tone], axis=-1).astype(np.float32).reshape(-1)
        data = types["audio_common_msgs/msg/AudioData"](float32_data=stereo, **UNUSED_AUDIO_FIELDS)
        audio = types["audio_common_msgs/msg/Audio"](audio_data=data, info=info)
        stamp = START_NS + start * NS_PER_S // MIC_RATE
        end = START_NS + (start + MIC_CHUNK) * NS_PER_S // MIC_RATE
        msg = types["audio_common_msgs/msg/AudioStamped"](header=_header(store, stamp, "microphone"), audio=audio)
        arrivals.append(Arrival(end + round(audio_delay_ms * 1_000_000), "microphone", msg))
    arrivals.sort(key=lambda a: a.arrival_ns)
    return iter(arrivals)


def describe(segment: Segment, origin_ns: int) -> str:
    t0, t1 = ns_to_seconds(segment.start_ns - origin_ns), ns_to_seconds(segment.end_ns - origin_ns)
    if segment.missing_video:
        frame = "no frame"
    else:
        height, width = segment.frame.shape[:2]
        frame = f"frame @{ns_to_seconds(segment.frame_stamp_ns - origin_ns):6.3f} s ({width}x{height})"
    audio = f"audio {segment.audio_coverage:4.0%} rms {float(np.sqrt(np.mean(segment.audio**2))):.3f}"
    texts = f"  text: {[t.text for t in segment.texts]}" if segment.texts else ""
    state = "partial" if segment.partial else "complete"
    return f"segment {segment.index:3d}  [{t0:6.2f}, {t1:6.2f}) s  {frame}  {audio}  {state}{texts}"


def run(seconds: float, fps: float, frame_policy: str, audio_delay_ms: float, seed: int, out=sys.stdout) -> int:
    from vispeak_ros.ros.conversions.audio import AudioStreamConverter
    from vispeak_ros.ros.conversions.image import decode_frame, frame_payload

    print("vispeak-demo: no model yet (the tiny demo model is a later issue): showing the input pipeline.", file=out)
    print(
        f"recording: {seconds:g} s, camera {fps:g} fps JPEG, microphone {MIC_RATE} Hz stereo "
        f"{audio_delay_ms:g} ms behind the video; frame policy {frame_policy}",
        file=out,
    )
    segmenter = Segmenter(SegmenterConfig(frame_policy=FramePolicy(frame_policy)), decode_frame=decode_frame)
    microphone = AudioStreamConverter("audio", flavour="mgonzs13")
    segments: list[Segment] = []
    for arrival in generate_recording(seconds, fps, audio_delay_ms, seed):
        if arrival.kind == "camera":
            payload = frame_payload(arrival.msg, "camera/image_raw/compressed")
            closed = segmenter.add_frame(payload.stamp_ns, payload)
        else:
            closed = []
            for chunk in microphone.convert(arrival.msg):
                closed += segmenter.add_audio(chunk.stamp_ns, chunk.samples)
        for segment in closed:
            print(describe(segment, START_NS), file=out)
        segments += closed
    for chunk in microphone.flush():
        segmenter.add_audio(chunk.stamp_ns, chunk.samples)
    for segment in segmenter.flush():
        print(describe(segment, START_NS), file=out)
        segments.append(segment)
    stats = segmenter.stats
    print(
        f"done: {len(segments)} segments ({stats.segments_partial} partial), frames used {stats.frames_used} / "
        f"skipped undecoded {stats.frames_skipped} / dropped {stats.frames_late + stats.frames_backwards}, "
        f"audio gaps {stats.audio_gaps}, decode errors {stats.decode_errors}",
        file=out,
    )
    return 0


def positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vispeak-demo",
        description="Run the assistant's input pipeline on a generated recording (no GPU, no ROS).",
    )
    parser.add_argument("--seconds", type=positive, default=10.0, help="recording length in seconds (default 10)")
    parser.add_argument("--fps", type=positive, default=15.0, help="camera frame rate (default 15)")
    parser.add_argument(
        "--frame-policy", choices=[p.value for p in FramePolicy], default="latest", help="frame per segment"
    )
    parser.add_argument("--audio-delay-ms", type=float, default=300.0, help="microphone lag behind the camera")
    parser.add_argument("--seed", type=int, default=0, help="noise seed of the recording")
    args = parser.parse_args(argv)
    if args.seconds > 3600:
        parser.error("--seconds must be at most 3600")
    return run(args.seconds, args.fps, args.frame_policy, args.audio_delay_ms, args.seed)


if __name__ == "__main__":
    sys.exit(main())
