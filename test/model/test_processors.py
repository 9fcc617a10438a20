"""Input processors: the CLIP image recipe of the InternViT folder and the whale encoder's Kaldi fbank."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from vispeak_ros.model import FbankConfig, VisionConfig
from vispeak_ros.model.audio import tokens_for_frames
from vispeak_ros.model.processors import audio_chunk_features, fbank, preprocess_image, split_chunks
from vispeak_ros.model.tiny import tiny_model


@pytest.mark.parametrize("shape", [(300, 500, 3), (640, 451, 3), (448, 448, 3), (720, 1280, 3)])
def test_image_preprocessing_equals_the_clip_image_processor(shape):
    cfg = VisionConfig()
    image = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    official = CLIPImageProcessorPil(
        size={"shortest_edge": 448},
        crop_size={"height": 448, "width": 448},
        image_mean=cfg.image_mean,
        image_std=cfg.image_std,
    )
    expected = official(images=image, return_tensors="pt")["pixel_values"][0]
    assert torch.equal(preprocess_image(image, cfg), expected)


def test_one_second_of_audio_is_98_frames_and_12_tokens():
    cfg = FbankConfig()
    features = fbank(np.zeros(16000, dtype=np.float32), cfg)
    assert features.shape == (98, 80)
    assert tokens_for_frames(98) == 12
    model = tiny_model(seed=0)
    fb, lengths = audio_chunk_features(np.zeros(16000), cfg)
    with torch.no_grad():
        assert model.encode_audio(fb, lengths).shape == (1, 12, model.config.hidden_size)


def test_fbank_is_deterministic_and_finds_a_tone_in_its_mel_band():
    cfg = FbankConfig()
    t = np.arange(16000) / 16000
    tone = 0.1 * np.sin(2 * np.pi * 1000 * t)
    first, second = fbank(tone, cfg), fbank(tone, cfg)
    assert torch.equal(first, second)  # dither is 0
    mel = 1127 * np.log(1 + np.array([20, 1000, 8000]) / 700)  # Kaldi mel scale, 20 Hz .. Nyquist
    expected_bin = int((mel[1] - mel[0]) / (mel[2] - mel[0]) * 81) - 1
    assert abs(int(first[50].argmax()) - expected_bin) <= 1
    # The waveform is scaled by 2^15 before fbank: a full-scale tone is ~90 dB (in natural log) above digital silence.
    assert float(first[50].max()) > 20


def test_audio_is_cut_in_exact_one_second_chunks_zero_padded():
    chunks = split_chunks(np.ones(24000, dtype=np.float32))
    assert [len(c) for c in chunks] == [16000, 16000]
    assert chunks[1][:8000].all() and not chunks[1][8000:].any()
    features, lengths = audio_chunk_features(np.ones(24000), FbankConfig())
    assert features.shape == (2, 98, 80) and lengths.tolist() == [98, 98]
