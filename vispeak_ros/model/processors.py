"""Input processors: a frame -> preprocessed pixels, 1 s of 16 kHz audio -> Kaldi fbank frames.

Image (`image_aspect_ratio` "square", as ViSpeak's streaming data uses it): one 448x448 image per frame, the
CLIPImageProcessor recipe of the InternViT folder: RGB, resize the shorter side to 448 with PIL bicubic (the longer
side to int(448 * long / short)), centre crop 448, x/255, normalise with the folder's mean and std.

Audio: the whale encoder's recipe: waveform scaled by 2^15, Kaldi fbank with the encoder's options (80 mel bins,
25 ms window, 10 ms shift, energy floor 0) and dither 0 (the training config's random dither is off at inference),
computed with kaldi-native-fbank (torchaudio cannot sit beside torch 2.13). Audio is cut in exact 1.0 s chunks,
the last one zero-padded: 16000 samples give 98 frames, which the encoder turns into 12 tokens.
"""

from __future__ import annotations

import kaldi_native_fbank as knf
import numpy as np
import torch
from PIL import Image

from vispeak_ros.model.config import FbankConfig, VisionConfig

WAVEFORM_SCALE = float(1 << 15)


def preprocess_image(image: np.ndarray | Image.Image, cfg: VisionConfig) -> torch.Tensor:
    """One RGB image (H x W x 3 uint8 array, or a PIL image) -> [3, S, S] float32 pixels."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    pil = pil.convert("RGB")
    size = cfg.image_size
    width, height = pil.size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    pil = pil.resize((new_w, new_h), resample=Image.Resampling.BICUBIC)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    pixels = np.asarray(pil, dtype=np.uint8)[top : top + size, left : left + size]
    scaled = (pixels.astype(np.float64) * (1 / 255)).astype(np.float32)
    mean = np.asarray(cfg.image_mean, dtype=np.float32)
    std = np.asarray(cfg.image_std, dtype=np.float32)
    return torch.from_numpy(((scaled - mean) / std).transpose(2, 0, 1).copy())


def preprocess_images(images: list[np.ndarray | Image.Image], cfg: VisionConfig) -> torch.Tensor:
    """Frames -> [N, 3, S, S]."""
    return torch.stack([preprocess_image(image, cfg) for image in images])


def split_chunks(waveform: np.ndarray, sample_rate: int = 16000, seconds: float = 1.0) -> list[np.ndarray]:
    """Mono float waveform -> exact chunks of `seconds`, the last zero-padded (an empty input gives none)."""
    samples = round(sample_rate * seconds)
    wave = np.asarray(waveform, dtype=np.float32).reshape(-1)
    chunks = []
    for start in range(0, len(wave), samples):
        chunk = wave[start : start + samples]
        if len(chunk) < samples:
            chunk = np.pad(chunk, (0, samples - len(chunk)))
        chunks.append(chunk)
    return chunks


def fbank(waveform: np.ndarray, cfg: FbankConfig) -> torch.Tensor:
    """Mono float waveform in [-1, 1] at cfg.sample_rate -> [frames, num_mel_bins] float32 log-mel fbank."""
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = float(cfg.sample_rate)
    opts.frame_opts.frame_length_ms = cfg.frame_length_ms
    opts.frame_opts.frame_shift_ms = cfg.frame_shift_ms
    opts.frame_opts.dither = 0.0
    opts.energy_floor = cfg.energy_floor
    opts.mel_opts.num_bins = cfg.num_mel_bins
    computer = knf.OnlineFbank(opts)
    wave = np.asarray(waveform, dtype=np.float32).reshape(-1) * WAVEFORM_SCALE
    computer.accept_waveform(float(cfg.sample_rate), wave.tolist())
    computer.input_finished()
    frames = [computer.get_frame(i) for i in range(computer.num_frames_ready)]
    if not frames:
        return torch.zeros(0, cfg.num_mel_bins)
    return torch.from_numpy(np.stack(frames).astype(np.float32))


def audio_chunk_features(waveform: np.ndarray, cfg: FbankConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """A waveform -> (fbank [chunks, frames, bins], lengths [chunks]) ready for `model.encode_audio`."""
    feats = [fbank(chunk, cfg) for chunk in split_chunks(waveform, cfg.sample_rate)]
    if not feats:
        return torch.zeros(0, 0, cfg.num_mel_bins), torch.zeros(0, dtype=torch.long)
    return torch.stack(feats), torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
