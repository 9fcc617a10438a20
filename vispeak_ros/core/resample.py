"""Streaming conversion of audio of any rate, channel count and sample type to 16 kHz mono float32.

ViSpeak's audio encoder wants 16 kHz mono; microphones on robots deliver 16/44.1/48 kHz, mono or stereo, as
int16, int32, float32 or uint8. Audio arrives in small chunks, so the resampler keeps its filter state across
calls (soxr.ResampleStream): processing a stream chunk by chunk gives the same samples as processing it in one go.

Timing, so that callers can stamp output chunks:

- **Group delay is zero in sample index.** soxr compensates its filter delay: output sample n is the signal at
  time n / out_rate after the first input sample. Stamp output sample n as `anchor + n / 16000` s, where
  `anchor` is the time of the first input sample.
- **Latency is not zero.** soxr holds back a filter's worth of output until input beyond it arrives: at the
  default "HQ" quality up to about 350-650 output samples (20-40 ms) from 44.1/48 kHz, about 1,700 (0.1 s)
  from 8 kHz. `flush()` releases them at end of stream; nothing is held when in_rate == out_rate.
- **Counts.** After `flush()`, the total output of N input frames is round(N * out_rate / in_rate) samples;
  before it, `frames_out <= round(frames_in * out_rate / in_rate)`.

soxr is imported when a resampler is constructed, so importing this module needs numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

OUT_RATE = 16_000


def to_float32(samples: np.ndarray) -> np.ndarray:
    """PCM of any numpy sample type as float32 in [-1, 1): intN / 2**(N-1), uintN centred first, floats as is."""
    samples = np.asarray(samples)
    kind = samples.dtype.kind
    if kind == "f":
        return samples.astype(np.float32, copy=False)
    if kind == "i":
        scale = float(2 ** (8 * samples.dtype.itemsize - 1))
        return (samples.astype(np.float64 if samples.dtype.itemsize > 2 else np.float32) / scale).astype(np.float32)
    if kind == "u":
        bits = 8 * samples.dtype.itemsize
        centre = 2 ** (bits - 1)
        return ((samples.astype(np.float64) - centre) / centre).astype(np.float32)
    if kind == "b":
        return samples.astype(np.float32)
    raise TypeError(f"audio samples must be a numeric array, got dtype {samples.dtype}")


class StreamResampler:
    """Stateful any-rate, any-channel-count to `out_rate` mono float32 converter.

    `process(chunk)` takes interleaved audio: a 1-D array (mono, or interleaved frames when channels > 1) or a
    2-D (frames, channels) array. Channels are averaged to mono before resampling (cheaper than resampling each
    channel, and the same result since resampling is linear).
    """

    def __init__(self, in_rate: int, channels: int = 1, out_rate: int = OUT_RATE, quality: str = "HQ") -> None:
        if int(in_rate) <= 0 or int(in_rate) != in_rate:
            raise ValueError(f"input sample rate must be a positive integer, got {in_rate!r}")
        if int(channels) <= 0 or int(channels) != channels:
            raise ValueError(f"channel count must be a positive integer, got {channels!r}")
        if int(out_rate) <= 0:
            raise ValueError(f"output sample rate must be positive, got {out_rate!r}")
        self.in_rate = int(in_rate)
        self.channels = int(channels)
        self.out_rate = int(out_rate)
        self.quality = quality
        self._stream: Any = None
        self.reset()

    @property
    def passthrough(self) -> bool:
        return self.in_rate == self.out_rate

    def reset(self) -> None:
        """Forget all state (a new, unrelated stream starts); counters restart at zero."""
        self.frames_in = 0
        self.frames_out = 0
        if self.passthrough:
            self._stream = None
            return
        import soxr

        self._stream = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=self.quality)

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Convert one chunk; returns the 1-D float32 output samples now available (possibly none)."""
        mono = self._to_mono(samples)
        self.frames_in += mono.size
        if self._stream is None:
            out = np.array(mono, dtype=np.float32, copy=True)  # never hand back a view of the caller's buffer
        else:
            out = np.ascontiguousarray(self._stream.resample_chunk(mono, last=False), dtype=np.float32)
        self.frames_out += out.size
        return out

    def flush(self) -> np.ndarray:
        """End of stream: return the held-back tail. The resampler is reset afterwards, ready for a new stream."""
        if self._stream is None:
            tail = np.zeros(0, dtype=np.float32)
        else:
            tail = np.ascontiguousarray(
                self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True), dtype=np.float32
            )
        self.reset()
        return tail

    def expected_output(self, frames_in: int) -> int:
        """Output samples that `frames_in` input frames give once flushed."""
        return round(frames_in * self.out_rate / self.in_rate)

    def _to_mono(self, samples: np.ndarray) -> np.ndarray:
        data = to_float32(samples)
        if data.ndim == 2:
            if data.shape[1] != self.channels:
                raise ValueError(f"expected {self.channels} channel(s), got an array of shape {data.shape}")
        elif data.ndim == 1:
            if data.size % self.channels:
                raise ValueError(
                    f"{data.size} interleaved samples is not a whole number of {self.channels}-channel frames"
                )
            data = data.reshape(-1, self.channels)
        else:
            raise ValueError(f"audio must be 1-D (interleaved) or 2-D (frames, channels), got shape {data.shape}")
        if self.channels == 1:
            return np.ascontiguousarray(data[:, 0])
        return data.mean(axis=1, dtype=np.float32)
