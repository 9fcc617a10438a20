"""Write a model in the published ViSpeak checkpoint layout, which `load_checkpoint` reads strictly.

config.json, model.safetensors (official key names), the InternViT folder (config + preprocessor config), the
audio-encoder folder (whale train.yaml + global_cmvn) and, when the model has one, the tokenizer. Used by the
training code (the demo checkpoint) and by tests that need a checkpoint on disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from safetensors.torch import save_file

from vispeak_ros.model.vispeak import ViSpeakForCausalLM, to_checkpoint_key

VISION_FOLDER = "InternViT-tiny"
AUDIO_FOLDER = "audio-encoder-tiny"
IM_END = "<|im_end|>"


def save_checkpoint(
    model: ViSpeakForCausalLM,
    folder: Path,
    extra: dict[str, Any] | None = None,
    *,
    config_extra: dict[str, Any] | None = None,
) -> Path:
    """The published layout `load_checkpoint` reads strictly: config.json, model.safetensors, the InternViT and
    audio-encoder folders (configs, train.yaml, global_cmvn), the tokenizer files, and the recipe for the record."""
    cfg = model.config
    assert cfg.vision is not None and cfg.audio is not None
    folder.mkdir(parents=True, exist_ok=True)
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
        "max_position_embeddings": llm.max_position_embeddings,
        "rms_norm_eps": llm.rms_norm_eps,
        "rope_theta": llm.rope_parameters["rope_theta"],
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "combination": cfg.combination,
        "use_informative_head": cfg.use_informative_head,
        "mm_hidden_size": cfg.mm_hidden_size,
        "mm_projector_type": cfg.mm_projector_type,
        "pooling_size": cfg.pooling_size,
        "image_aspect_ratio": "square",
        "mm_vision_tower": VISION_FOLDER,
        "mm_audio_encoder": AUDIO_FOLDER,
        "tokenizer_model_max_length": 6200,
        "torch_dtype": "float32",
        **(config_extra or {}),
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    state = {to_checkpoint_key(k): v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    v = cfg.vision
    vision_dir = folder / VISION_FOLDER
    vision_dir.mkdir(exist_ok=True)
    vision_cfg = {
        "architectures": ["InternVisionModel"],
        "hidden_size": v.hidden_size,
        "intermediate_size": v.intermediate_size,
        "num_hidden_layers": v.num_hidden_layers,
        "num_attention_heads": v.num_attention_heads,
        "layer_norm_eps": v.layer_norm_eps,
        "hidden_act": v.hidden_act,
        "image_size": v.image_size,
        "patch_size": v.patch_size,
        "norm_type": v.norm_type,
        "qkv_bias": v.qkv_bias,
        "qk_normalization": v.qk_normalization,
        "num_channels": 3,
    }
    (vision_dir / "config.json").write_text(json.dumps(vision_cfg, indent=2) + "\n", encoding="utf-8")
    pre = {
        "crop_size": {"height": v.image_size, "width": v.image_size},
        "do_center_crop": True,
        "do_normalize": True,
        "do_resize": True,
        "image_mean": list(v.image_mean),
        "image_std": list(v.image_std),
        "image_processor_type": "CLIPImageProcessor",
        "resample": 3,
        "size": {"shortest_edge": v.image_size},
    }
    (vision_dir / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n", encoding="utf-8")
    _write_audio_folder(model, folder / AUDIO_FOLDER)
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None:  # weights-only checkpoints are valid too ("tokenizer: none")
        tokenizer.tokenizer.save(str(folder / "tokenizer.json"))
        config = {"pad_token": tokenizer.pad_token, "eos_token": IM_END, "model_max_length": 6200}
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if extra:
        (folder / "training.json").write_text(json.dumps(extra, indent=2, default=str) + "\n", encoding="utf-8")
    return folder


def _write_audio_folder(model: ViSpeakForCausalLM, audio_dir: Path) -> None:
    a = model.config.audio
    assert a is not None and model.audio_encoder is not None
    audio_dir.mkdir(exist_ok=True)
    transformer = {
        "transformer-attention-dim": a.attention_dim,
        "transformer-attention-heads": a.attention_heads,
        "transformer-linear-units": a.linear_units,
        "transformer-num-blocks": a.num_blocks,
        "transformer-input-dim": a.transformer_input_dim,
        "transformer-output-dim": a.enc_out_dim,
        "transformer-input-layer": a.input_layer,
        "transformer-pos-enc-class": a.pos_enc_class,
        "transformer-normalize-before": a.normalize_before,
        "transformer-concat-after": a.concat_after,
        "transformer-chunk_size": a.chunk_size,
        "transformer-left_chunks": a.left_chunks,
        "transformer-dynamic-chunks": a.dynamic_chunks,
        "transformer-positionwise-layer-type": "linear",
    }
    train_yaml = {
        "input_dim": a.input_dim,
        "is_json_cmvn": True,
        "dataset_conf": {
            "fbank_conf": {"num_mel_bins": a.fbank.num_mel_bins, "frame_length": 25, "frame_shift": 10, "dither": 0.0},
            "resample_conf": {"resample_rate": a.fbank.sample_rate},
        },
        "encoder_conf": {
            "overview_conf": {
                "encoder-input-dim": a.input_dim,
                "encoder-layer-config": "subsampling-transformer",
                "encoder-output-dim": a.enc_out_dim,
            },
            "para_conf": {
                "subsampling": {
                    "subsampling-input-dim": a.input_dim,
                    "subsampling-rate": a.subsampling_rate,
                    "subsampling-output-dim": a.subsampling_output_dim,
                },
                "transformer": transformer,
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
    (audio_dir / "train.yaml").write_text(yaml.safe_dump(train_yaml, sort_keys=True), encoding="utf-8")
    cmvn = model.audio_encoder.encoder.global_cmvn
    mean = cmvn.mean.double()
    var = (1.0 / cmvn.istd.double()) ** 2 + mean**2
    frames = 1000  # the stats file stores sums over frames: any count reproduces mean and istd
    stats = {"mean_stat": (mean * frames).tolist(), "var_stat": (var * frames).tolist(), "frame_num": frames}
    (audio_dir / "global_cmvn").write_text(json.dumps(stats) + "\n", encoding="utf-8")
