"""Helpers shared by the model tests: the official tiny reference and a writer for tiny checkpoints.

(Not in conftest.py, so that tests can import them without clashing with other folders' conftest modules.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from safetensors.torch import save_file

from vispeak_ros.model.config import ViSpeakConfig
from vispeak_ros.model.tokenizer import SpecialTokens
from vispeak_ros.model.vispeak import ViSpeakForCausalLM, to_checkpoint_key

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
REFERENCE = SHARED / "reference" / "official_tiny"
TOL = 1e-4


def close(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """Equal shapes, values within TOL (absolute and relative)."""
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours.float(), theirs.float(), atol=TOL, rtol=TOL)


@dataclass
class Reference:
    """The official code's outputs on its tiny checkpoint (reference_io.json + reference_io.safetensors)."""

    root: Path
    meta: dict
    tensors: dict[str, torch.Tensor]

    @property
    def model_dir(self) -> Path:
        return self.root / "tiny_model"

    def tokens(self) -> SpecialTokens:
        ids = self.meta["token_ids"]
        return SpecialTokens(
            seg=ids["seg_token_chosen"],
            pad=ids["pad_chosen"],
            im_end=ids["im_end_stop"],
            proactive=ids["proactive_forced_first_token"],
        )


def write_checkpoint(model: ViSpeakForCausalLM, root: Path, *, config_extra: dict | None = None) -> Path:
    """Save a model in the published layout: config.json, model.safetensors, InternViT and audio-encoder folders."""
    cfg: ViSpeakConfig = model.config
    root.mkdir(parents=True, exist_ok=True)
    llm = cfg.llm
    config = {
        "architectures": ["ViSpeakQwen2ForCausalLM"],
        "model_type": "vispeak-Qwen2",
        "vocab_size": llm.vocab_size,
        "hidden_size": llm.hidden_size,
        "intermediate_size": llm.intermediate_size,
        "num_hidden_layers": llm.num_hidden_layers,
        "num_attention_heads": llm.num_attention_heads,
        "num_key_value_heads": llm.num_key_value_heads,
        "rms_norm_eps": llm.rms_norm_eps,
        "rope_theta": llm.rope_parameters["rope_theta"],
        "tie_word_embeddings": False,
        "combination": cfg.combination,
        "use_informative_head": cfg.use_informative_head,
        "mm_hidden_size": cfg.mm_hidden_size,
        "mm_projector_type": cfg.mm_projector_type,
        "pooling_size": cfg.pooling_size,
        "mm_vision_tower": "InternViT-tiny",
        "mm_audio_encoder": "audio-encoder-tiny",
        "torch_dtype": "float32",
        **(config_extra or {}),
    }
    (root / "config.json").write_text(json.dumps(config))
    state = {to_checkpoint_key(k): v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(root / "model.safetensors"))
    v = cfg.vision
    vision_dir = root / "InternViT-tiny"
    vision_dir.mkdir(exist_ok=True)
    (vision_dir / "config.json").write_text(
        json.dumps(
            {
                "hidden_size": v.hidden_size,
                "num_attention_heads": v.num_attention_heads,
                "layer_norm_eps": v.layer_norm_eps,
                "hidden_act": v.hidden_act,
                "image_size": v.image_size,
                "patch_size": v.patch_size,
                "norm_type": v.norm_type,
            }
        )
    )
    a = cfg.audio
    audio_dir = root / "audio-encoder-tiny"
    audio_dir.mkdir(exist_ok=True)
    tr = {
        "transformer-attention-dim": a.attention_dim,
        "transformer-attention-heads": a.attention_heads,
        "transformer-linear-units": a.linear_units,
        "transformer-num-blocks": a.num_blocks,
        "transformer-input-dim": a.transformer_input_dim,
        "transformer-input-layer": a.input_layer,
        "transformer-pos-enc-class": a.pos_enc_class,
        "transformer-normalize-before": a.normalize_before,
        "transformer-concat-after": a.concat_after,
        "transformer-chunk_size": a.chunk_size,
        "transformer-left_chunks": a.left_chunks,
        "transformer-dynamic-chunks": a.dynamic_chunks,
    }
    train = {
        "input_dim": a.input_dim,
        "dataset_conf": {"fbank_conf": {"num_mel_bins": 80, "frame_length": 25, "frame_shift": 10, "dither": 1.0}},
        "encoder_conf": {
            "overview_conf": {"encoder-layer-config": "subsampling-transformer"},
            "para_conf": {
                "subsampling": {"subsampling-rate": 4, "subsampling-output-dim": a.subsampling_output_dim},
                "transformer": tr,
            },
        },
        "model_conf": {
            "enc_out_dim": a.enc_out_dim,
            "llm_embed_dim": a.llm_embed_dim,
            "adpter_type": a.adapter_type,
            "kernel_size": a.kernel_size,
            "activation_func": a.activation,
            "norm": a.norm,
        },
    }
    (audio_dir / "train.yaml").write_text(yaml.safe_dump(train))
    return root
