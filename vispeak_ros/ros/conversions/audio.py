"""Audio messages of both `audio_common_msgs` flavours to stamped 16 kHz mono float32 chunks for the segmenter.

One `AudioStreamConverter` per audio topic takes messages as they arrive and returns `AudioChunk(stamp_ns,
samples)` tuples, exactly what `Segmenter.add_audio(stamp_ns, samples)` takes:

- **ros_drivers** (ros-drivers/audio_common, ros2 branch): `AudioDataStamped` (or unstamped `AudioData` with
  a stamp passed in) carries bytes whose meaning is given by a separate `AudioInfo` message: `coding_format`
  "mp3" (audio_capture's default; decoded by a PyAV decoder that keeps its state across messages, so byte
  chunks may split mp3 frames anywhere) or "wave" (raw PCM in `sample_format`). Audio that arrives before
  the first AudioInfo is dropped and counted: subscribe to `audio_info` with transient-local durability.
- **mgonzs13** (mgonzs13/audio_common): `AudioStamped` carries typed samples plus their `AudioInfo` (PortAudio
  format flag, channels, rate) in every message.

Stamps: the first output sample of a stream is stamped with the header stamp of the message that started it;
after that, output sample n is at `anchor + n / 16000` s (the resampler has no group delay), so consecutive
chunks are contiguous. Each message's stamp is compared with where the stream should be
(`anchor + input frames so far / input rate`); when they disagree by more than `tolerance_s` (lost messages,
a clock jump, a bag loop) the old stream is flushed and a new one anchored at the message stamp. A change of
format, rate or channel count does the same. mp3 output carries the codec's delay (encoder + decoder, 1,105
samples = 69 ms at 16 kHz with LAME), which is not removed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from vispeak_ros.core.clock import NS_PER_S
from vispeak_ros.core.resample import OUT_RATE, StreamResampler
from vispeak_ros.ros.conversions.buffers import as_bytes_array, as_typed_array, header_stamp_ns
from vispeak_ros.ros.conversions.errors import ConversionError, malformed, unsupported

FLAVOURS: tuple[str, ...] = ("ros_drivers", "mgonzs13")

# GStreamer sample formats (ros_drivers AudioInfo.sample_format) we read from "wave" data. S24LE is packed.
PCM_FORMATS: dict[str, np.dtype] = {
    "U8": np.dtype("u1"),
    "S8": np.dtype("i1"),
    "S16LE": np.dtype("<i2"),
    "S16BE": np.dtype(">i2"),
    "S24LE": np.dtype("V3"),
    "S32LE": np.dtype("<i4"),
    "S32BE": np.dtype(">i4"),
    "F32LE": np.dtype("<f4"),
    "F32BE": np.dtype(">f4"),
    "F64LE": np.dtype("<f8"),
}
CODINGS: tuple[str, ...] = ("wave", "mp3")

# PortAudio sample format flags (mgonzs13 AudioInfo.format) -> (name, AudioData field, dtype).
PORTAUDIO_FORMATS: dict[int, tuple[str, str, np.dtype]] = {
    1: ("paFloat32", "float32_data", np.dtype(np.float32)),
    2: ("paInt32", "int32_data", np.dtype(np.int32)),
    8: ("paInt16", "int16_data", np.dtype(np.int16)),
    16: ("paInt8", "int8_data", np.dtype(np.int8)),
    32: ("paUInt8", "uint8_data", np.dtype(np.uint8)),
}

# Plausible microphone streams. A rate of 1 Hz would turn each input sample into 16,000 output samples (a message
# of a few kB into hundreds of MB), so rates and channel counts outside these bounds are refused.
MIN_RATE, MAX_RATE = 1_000, 384_000
MAX_CHANNELS = 64

# Longest mp3 frame (MPEG-1 Layer III: 1152 samples). Decoded audio can lag a message's stamp by up to a frame
# held in the parser, so mp3 streams get this much extra continuity tolerance.
_MP3_FRAME_SAMPLES = 1152


class AudioChunk(NamedTuple):
    """16 kHz mono float32 samples whose first sample is at `stamp_ns` (stream time)."""

    stamp_ns: int
    samples: np.ndarray


@dataclass(frozen=True)
class AudioFormat:
    """What an audio message holds: rate, channels and coding, one of "mp3", "pcm" (raw bytes in `sample_format`,
    a GStreamer name) or "samples" (typed arrays; `sample_format` is the PortAudio name)."""

    coding: str
    sample_format: str
    rate: int
    channels: int


@dataclass
class AudioConverterStats:
    messages: int = 0
    chunks_out: int = 0
    samples_out: int = 0
    dropped_waiting_for_info: int = 0
    decode_errors: int = 0
    reanchors: int = 0
    format_changes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# ---- formats ---------------------------------------------------------------------------------------------------


def format_from_ros_drivers_info(info: Any, topic: str = "") -> AudioFormat:
    """The AudioFormat an ros-drivers AudioInfo describes; raises ConversionError for what we cannot decode."""
    coding = str(info.coding_format).strip().lower()
    rate, channels = int(info.sample_rate), int(info.channels)
    if coding not in CODINGS:
        raise unsupported(topic, "AudioInfo coding_format", str(info.coding_format), CODINGS)
    if coding == "mp3":
        return AudioFormat("mp3", "", rate, channels)  # the mp3 stream itself says its rate and channels
    sample_format = str(info.sample_format).strip().upper()
    if sample_format not in PCM_FORMATS:
        raise unsupported(topic, "AudioInfo sample_format", str(info.sample_format), PCM_FORMATS)
    _check_rate_channels(topic, rate, channels)
    return AudioFormat("pcm", sample_format, rate, channels)


def format_from_mgonzs13_info(info: Any, topic: str = "") -> AudioFormat:
    """The AudioFormat an mgonzs13 AudioInfo describes; raises ConversionError for what we cannot decode."""
    flag, rate, channels = int(info.format), int(info.rate), int(info.channels)
    if flag not in PORTAUDIO_FORMATS:
        names = [f"{k} ({v[0]})" for k, v in PORTAUDIO_FORMATS.items()]
        raise unsupported(topic, "AudioInfo format", flag, names)
    _check_rate_channels(topic, rate, channels)
    return AudioFormat("samples", PORTAUDIO_FORMATS[flag][0], rate, channels)


def _check_rate_channels(topic: str, rate: int, channels: int) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise malformed(topic, f"sample rate {rate} Hz (supported: {MIN_RATE} to {MAX_RATE} Hz)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise malformed(topic, f"{channels} channels (supported: 1 to {MAX_CHANNELS})")


def _finite(samples: np.ndarray, topic: str) -> np.ndarray:
    """Float samples: NaN or infinity refused (they would poison the model's features), the rest clipped to
    [-1, 1] (full scale; a clipping microphone stays loud, a bogus 1e38 does not overflow the filters)."""
    if samples.dtype.kind != "f":
        return samples
    if not np.isfinite(samples).all():
        raise malformed(topic, f"{int(np.size(samples) - np.isfinite(samples).sum())} NaN or infinite samples")
    return np.clip(samples, -1.0, 1.0)


def detect_flavour(msg: Any) -> str:
    """Which audio_common_msgs flavour a message belongs to, from its fields."""
    audio = getattr(msg, "audio", msg)
    if hasattr(audio, "audio_data") and hasattr(audio, "info"):
        return "mgonzs13"
    if hasattr(audio, "data"):
        return "ros_drivers"
    raise ConversionError(f"not an audio_common_msgs message: {type(msg).__name__} (supported: {', '.join(FLAVOURS)})")


# ---- decoders --------------------------------------------------------------------------------------------------


class PcmDecoder:
    """Raw interleaved PCM bytes to (frames, channels) arrays; a partial frame is kept for the next chunk."""

    def __init__(self, sample_format: str, channels: int) -> None:
        self.dtype = PCM_FORMATS[sample_format]
        self.channels = channels
        self.frame_bytes = self.dtype.itemsize * channels
        self._carry = np.zeros(0, dtype=np.uint8)

    def decode(self, data: Any) -> np.ndarray:
        raw = as_bytes_array(data)
        if self._carry.size:
            raw = np.concatenate([self._carry, raw])
        usable = raw.size - raw.size % self.frame_bytes
        self._carry = raw[usable:].copy()
        raw = raw[:usable]
        if self.dtype.kind == "V":  # packed 24-bit little endian -> int32 with the sample in the top bytes
            triplets = raw.reshape(-1, 3).astype(np.int32)
            samples = (triplets[:, 0] << 8) | (triplets[:, 1] << 16) | (triplets[:, 2] << 24)
        else:
            samples = raw.view(self.dtype)
        return samples.reshape(-1, self.channels)

    def reset(self) -> None:
        self._carry = np.zeros(0, dtype=np.uint8)


class Mp3Decoder:
    """A streaming mp3 decoder (PyAV): byte chunks in, decoded (rate, channels, (frames, channels)) blocks out.

    The parser keeps partial frames across chunks. Frames that cannot be decoded (a stream joined mid-way, whose
    first frames refer to the bit reservoir of frames never seen, or lost bytes) are skipped and counted.
    """

    def __init__(self) -> None:
        import av

        self._av = av
        self._ctx = av.CodecContext.create("mp3", "r")
        self.errors = 0

    def decode(self, data: Any) -> list[tuple[int, int, np.ndarray]]:
        payload = as_bytes_array(data).tobytes()
        if not payload:
            return []
        return self._run(payload)

    def flush(self) -> list[tuple[int, int, np.ndarray]]:
        """Decode what the parser still holds (end of stream)."""
        return self._run(None)

    def _run(self, payload: bytes | None) -> list[tuple[int, int, np.ndarray]]:
        error = self._av.error.FFmpegError
        blocks: list[tuple[int, int, np.ndarray]] = []
        try:
            packets = list(self._ctx.parse(payload if payload is not None else b""))
        except error:
            self.errors += 1
            return blocks
        if payload is None:
            packets.append(None)
        for packet in packets:
            try:
                frames = self._ctx.decode(packet)
            except error:
                self.errors += 1
                continue
            for frame in frames:
                blocks.append((int(frame.sample_rate), int(frame.layout.nb_channels), _frame_array(frame)))
        return blocks


def _decoder_for(fmt: AudioFormat) -> PcmDecoder | Mp3Decoder | None:
    if fmt.coding == "mp3":
        return Mp3Decoder()
    if fmt.coding == "pcm":
        return PcmDecoder(fmt.sample_format, fmt.channels)
    return None  # typed sample arrays need no decoding


def _frame_array(frame: Any) -> np.ndarray:
    """A PyAV AudioFrame as a (frames, channels) array in its native sample type."""
    array = frame.to_ndarray()
    channels = int(frame.layout.nb_channels)
    if frame.format.is_planar:
        return np.ascontiguousarray(array.T)
    return array.reshape(-1, channels)


# ---- the per-topic converter -------------------------------------------------------------------------------------


class AudioStreamConverter:
    """Per-topic, stateful: audio messages in, contiguous stamped 16 kHz mono float32 chunks out.

    `flavour` is "ros_drivers" or "mgonzs13", or None to detect it from the first message. For ros_drivers,
    call `on_info(info)` with each AudioInfo message. `convert(msg)` returns a list of AudioChunk (often one,
    none while the resampler fills or before an AudioInfo, two when a stream ends and another begins).
    """

    def __init__(
        self, topic: str = "", flavour: str | None = None, *, tolerance_s: float = 0.05, out_rate: int = OUT_RATE
    ) -> None:
        if flavour is not None and flavour not in FLAVOURS:
            raise ValueError(f"unknown audio_common flavour {flavour!r} (supported: {', '.join(FLAVOURS)})")
        self.topic = topic
        self.flavour = flavour
        self.tolerance_ns = round(tolerance_s * NS_PER_S)
        self.out_rate = out_rate
        self.stats = AudioConverterStats()
        self._info_format: AudioFormat | None = None
        self._reset_stream()

    # ---- public ------------------------------------------------------------------------------------------------

    @property
    def format(self) -> AudioFormat | None:
        """The format of the stream being converted (None before the first decodable message)."""
        return self._format

    @property
    def next_stamp_ns(self) -> int | None:
        """Where the stream continues: the stamp a contiguous next message carries (None before a stream starts).
        Unstamped audio is stamped with it, so chunks follow the sample count from the first arrival."""
        if self._anchor_ns is None or self._resampler is None:
            return None
        return self._anchor_ns + self._in_frames * NS_PER_S // self._resampler.in_rate

    @property
    def waiting_for_info(self) -> bool:
        return self.flavour == "ros_drivers" and self._info_format is None

    def on_info(self, info: Any) -> None:
        """An ros-drivers AudioInfo: the format of the audio that follows. Raises ConversionError if unsupported."""
        self._info_format = format_from_ros_drivers_info(info, self.topic)

    def convert(self, msg: Any, stamp_ns: int | None = None) -> list[AudioChunk]:
        """Convert one message; `stamp_ns` is used (and required) only for messages without a header."""
        self.stats.messages += 1
        if self.flavour is None:
            self.flavour = detect_flavour(msg)
        stamp = header_stamp_ns(msg)
        if stamp is None:
            stamp = stamp_ns
        if stamp is None:
            raise ConversionError(f"{self.topic}: audio message has no header: pass its stamp_ns (e.g. receive time)")
        if self.flavour == "mgonzs13":
            return self._convert_mgonzs13(msg, stamp)
        return self._convert_ros_drivers(msg, stamp)

    def flush(self) -> list[AudioChunk]:
        """End of stream: everything still held by the decoder and the resampler. Converting may go on after it
        (a new stream, with a fresh decoder); the last AudioInfo is kept."""
        if isinstance(self._decoder, Mp3Decoder):
            for rate, channels, block in self._decoder.flush():
                self._feed(block, rate, channels)
        self._end_stream()
        chunks = self._take()
        self._reset_stream()  # a drained decoder takes no more input
        return chunks

    def reset(self) -> None:
        """Forget the stream (and the last AudioInfo); counters are kept."""
        self._info_format = None
        self._reset_stream()

    # ---- flavours ----------------------------------------------------------------------------------------------

    def _convert_mgonzs13(self, msg: Any, stamp: int) -> list[AudioChunk]:
        audio = getattr(msg, "audio", msg)
        fmt = format_from_mgonzs13_info(audio.info, self.topic)
        _, field_name, dtype = PORTAUDIO_FORMATS[int(audio.info.format)]
        samples = _finite(as_typed_array(getattr(audio.audio_data, field_name), dtype), self.topic)
        if samples.size % fmt.channels:
            raise malformed(
                self.topic, f"{samples.size} samples in {field_name} is not a multiple of {fmt.channels} channels"
            )
        self._start(fmt, stamp)
        self._feed(samples.reshape(-1, fmt.channels), fmt.rate, fmt.channels)
        return self._take()

    def _convert_ros_drivers(self, msg: Any, stamp: int) -> list[AudioChunk]:
        fmt = self._info_format
        if fmt is None:
            self.stats.dropped_waiting_for_info += 1
            return []
        audio = getattr(msg, "audio", msg)
        self._start(fmt, stamp)
        if isinstance(self._decoder, Mp3Decoder):
            errors = self._decoder.errors
            for rate, channels, block in self._decoder.decode(audio.data):
                self._feed(block, rate, channels)
            self.stats.decode_errors += self._decoder.errors - errors
        elif isinstance(self._decoder, PcmDecoder):
            self._feed(_finite(self._decoder.decode(audio.data), self.topic), fmt.rate, fmt.channels)
        return self._take()

    # ---- stream bookkeeping ------------------------------------------------------------------------------------

    def _reset_stream(self) -> None:
        self._format: AudioFormat | None = None
        self._decoder: PcmDecoder | Mp3Decoder | None = None
        self._resampler: StreamResampler | None = None
        self._anchor_ns: int | None = None  # stamp of the stream's first input frame
        self._message_stamp = 0  # stamp of the message being converted
        self._in_frames = 0  # input frames fed since the anchor, at the resampler's input rate
        self._out_samples = 0  # output samples produced since the anchor
        self._out: list[tuple[int, int, np.ndarray]] = []  # (anchor_ns, first output index, samples)

    def _start(self, fmt: AudioFormat, stamp: int) -> None:
        """Before feeding a message stamped `stamp`: handle format changes and stamp discontinuities."""
        if fmt != self._format:
            if self._format is not None:
                self.stats.format_changes += 1
                self._end_stream()
            self._format = fmt
            self._decoder = _decoder_for(fmt)
        self._message_stamp = stamp
        if self._anchor_ns is None or self._resampler is None:
            return  # the stream is anchored by the first message that yields samples
        expected = self._anchor_ns + self._in_frames * NS_PER_S // self._resampler.in_rate
        tolerance = self.tolerance_ns
        if fmt.coding == "mp3":
            tolerance += _MP3_FRAME_SAMPLES * NS_PER_S // self._resampler.in_rate
        if abs(stamp - expected) > tolerance:
            self.stats.reanchors += 1
            self._end_stream()
            if isinstance(self._decoder, PcmDecoder):
                self._decoder.reset()

    def _feed(self, block: np.ndarray, rate: int, channels: int) -> None:
        if block.size == 0:
            return
        resampler = self._resampler
        if resampler is None or resampler.in_rate != rate or resampler.channels != channels:
            if resampler is not None:  # the decoded stream changed rate or channels: continue its timeline
                self.stats.format_changes += 1
                next_anchor = self._anchor_ns + self._in_frames * NS_PER_S // resampler.in_rate
                self._end_stream()
                self._anchor_ns = next_anchor
            resampler = self._resampler = StreamResampler(rate, channels, self.out_rate)
        if self._anchor_ns is None:
            self._anchor_ns = self._message_stamp
        self._in_frames += block.shape[0]
        self._emit(resampler.process(block))

    def _end_stream(self) -> None:
        """Flush the resampler into the output and forget the anchor (the decoder is kept)."""
        if self._resampler is not None:
            self._emit(self._resampler.flush())
        self._resampler = None
        self._anchor_ns = None
        self._in_frames = 0
        self._out_samples = 0

    def _emit(self, samples: np.ndarray) -> None:
        if samples.size == 0 or self._anchor_ns is None:
            return
        self._out.append((self._anchor_ns, self._out_samples, samples))
        self._out_samples += samples.size

    def _take(self) -> list[AudioChunk]:
        """Pending output as chunks, contiguous pieces of one stream merged."""
        chunks: list[AudioChunk] = []
        groups: list[list[tuple[int, int, np.ndarray]]] = []
        for piece in self._out:
            last = groups[-1][-1] if groups else None
            if last is not None and last[0] == piece[0] and last[1] + last[2].size == piece[1]:
                groups[-1].append(piece)
            else:
                groups.append([piece])
        self._out = []
        for group in groups:
            anchor, index = group[0][0], group[0][1]
            samples = group[0][2] if len(group) == 1 else np.concatenate([p[2] for p in group])
            chunks.append(AudioChunk(anchor + index * NS_PER_S // self.out_rate, samples))
            self.stats.chunks_out += 1
            self.stats.samples_out += samples.size
        return chunks


__all__ = [
    "CODINGS",
    "FLAVOURS",
    "PCM_FORMATS",
    "PORTAUDIO_FORMATS",
    "AudioChunk",
    "AudioConverterStats",
    "AudioFormat",
    "AudioStreamConverter",
    "Mp3Decoder",
    "PcmDecoder",
    "detect_flavour",
    "format_from_mgonzs13_info",
    "format_from_ros_drivers_info",
]
