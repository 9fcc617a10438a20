"""A tiny random ViSpeak, built in code from a seed: for tests and benchmarks (nothing is downloaded)."""

from __future__ import annotations

import torch

from vispeak_ros.model.config import AudioConfig, VisionConfig, ViSpeakConfig, llm_config_from_dict
from vispeak_ros.model.vispeak import ViSpeakForCausalLM


def tiny_config(
    *,
    vocab_size: int = 512,
    hidden_size: int = 32,
    num_layers: int = 2,
    combination: str = "adaptive_combine",
    informative_head: bool = True,
    encoders: bool = True,
) -> ViSpeakConfig:
    """Same structure as the real model at toy sizes: 56 px frames (4x4 patches -> 1 token), 2-block whale."""
    llm = llm_config_from_dict(
        {
            "vocab_size": vocab_size,
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": num_layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "rope_theta": 1e6,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": False,
        },
        "tiny_config",
    )
    vision = VisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=56, patch_size=14
    )
    audio = AudioConfig(
        subsampling_output_dim=16,
        transformer_input_dim=16,
        attention_dim=16,
        attention_heads=2,
        linear_units=32,
        num_blocks=2,
        chunk_size=4,
        left_chunks=2,
        enc_out_dim=16,
        llm_embed_dim=hidden_size,
    )
    return ViSpeakConfig(
        llm=llm,
        vision=vision if encoders else None,
        audio=audio if encoders else None,
        mm_hidden_size=4 * vision.hidden_size,
        combination=combination,
        use_informative_head=informative_head,
        pooling_size=2,
    )


def tiny_model(seed: int = 0, **kwargs) -> ViSpeakForCausalLM:
    """A seeded random tiny model in eval mode without gradients."""
    torch.manual_seed(seed)
    model = ViSpeakForCausalLM(tiny_config(**kwargs))
    with torch.no_grad():  # larger than the 0.02 default so that logits and gates are not all alike
        for name, param in model.named_parameters():
            if param.dim() >= 2 and "embed_tokens" in name:
                param.normal_(0.0, 1.0)
    model.eval()
    model.requires_grad_(False)
    return model
