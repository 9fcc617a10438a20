"""Configuration of ViSpeak, read from the published files as they are.

Three sources, each for what only it knows:
- the checkpoint's `config.json` (model_type "vita-Qwen2" or "vispeak-Qwen2"): the Qwen2 LLM and the multimodal
  glue (projector type, pooling, fusion variant, informative head);
- the InternViT folder's `config.json`: vision settings the weights do not determine (heads, norm eps, activation);
- the VITA-1.5 audio-encoder folder's `train.yaml`: the whale encoder's settings (heads, chunking, positional
  encoding, fbank options).
Nothing is guessed: a setting that is needed and absent raises `CheckpointError` naming the setting and the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import Qwen2Config

from vispeak_ros.model.errors import CheckpointError

MODEL_TYPES = ("vita-Qwen2", "vispeak-Qwen2")
COMBINATIONS = ("adaptive_combine", "linear_combine", "add")

# Fields of the published config.json that describe the Qwen2 decoder.
_LLM_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "max_position_embeddings",
    "rms_norm_eps",
    "rope_theta",
    "rope_scaling",
    "tie_word_embeddings",
    "sliding_window",
    "use_sliding_window",
    "max_window_layers",
    "attention_dropout",
    "bos_token_id",
    "eos_token_id",
)
_LLM_REQUIRED = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")


@dataclass(frozen=True)
class VisionConfig:
    """InternViT settings. Weights fix the sizes; heads, eps and activation come from the tower's config.json."""

    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    image_size: int = 448
    patch_size: int = 14
    layer_norm_eps: float = 1e-6
    norm_type: str = "layer_norm"
    hidden_act: str = "gelu"
    qkv_bias: bool = True
    qk_normalization: bool = False
    image_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    image_std: tuple[float, float, float] = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class FbankConfig:
    """Kaldi fbank options of the whale encoder. Dither is always 0 here: inference must be deterministic."""

    sample_rate: int = 16000
    num_mel_bins: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    energy_floor: float = 0.0


@dataclass(frozen=True)
class AudioConfig:
    """Whale encoder ("subsampling-transformer") and its adapter, as in the encoder folder's train.yaml."""

    input_dim: int = 80
    subsampling_rate: int = 4
    subsampling_output_dim: int = 1024
    transformer_input_dim: int = 1024
    attention_dim: int = 1024
    attention_heads: int = 16
    linear_units: int = 4096
    num_blocks: int = 24
    input_layer: str = "linear"
    pos_enc_class: str = "abs-enc"
    normalize_before: bool = True
    concat_after: bool = False
    chunk_size: int = -1
    left_chunks: int = -1
    dynamic_chunks: bool = False
    enc_out_dim: int = 1024
    llm_embed_dim: int = 3584
    adapter_type: str = "subsampling"
    kernel_size: int = 5
    activation: str = "gelu"
    norm: str = "batch"
    fbank: FbankConfig = field(default_factory=FbankConfig)


@dataclass
class ViSpeakConfig:
    """Everything needed to build the model. `llm` is a stock `Qwen2Config`."""

    llm: Qwen2Config
    vision: VisionConfig | None = None
    audio: AudioConfig | None = None
    model_type: str = "vispeak-Qwen2"
    mm_hidden_size: int = 4096
    mm_projector_type: str = "mlp2x_gelu"
    pooling_size: int = 2
    combination: str = "adaptive_combine"
    use_informative_head: bool = True
    image_aspect_ratio: str = "square"
    mm_vision_tower: str | None = None
    mm_audio_encoder: str | None = None
    max_length: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def hidden_size(self) -> int:
        return self.llm.hidden_size

    @property
    def tokens_per_frame(self) -> int:
        """Visual tokens per frame after pixel shuffle (x0.5) and pooling: 64 for InternViT-448 with pooling 2."""
        if self.vision is None:
            raise CheckpointError("tokens_per_frame: no vision tower configured")
        grid = self.vision.image_size // self.vision.patch_size // 2 // max(self.pooling_size, 1)
        return grid * grid


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON file, turning every failure into one `CheckpointError` line."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"missing file: {path}") from None
    except (OSError, ValueError) as exc:  # JSONDecodeError, UnicodeDecodeError (binary garbage)
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def llm_config_from_dict(raw: dict[str, Any], where: str) -> Qwen2Config:
    """Build the stock Qwen2Config from the published config fields."""
    for name in _LLM_REQUIRED:
        if name not in raw:
            raise CheckpointError(f"LLM setting {name!r} missing in {where}")
    kwargs = {k: raw[k] for k in _LLM_FIELDS if k in raw and raw[k] is not None}
    cfg = Qwen2Config(**kwargs)
    cfg._attn_implementation = "sdpa"
    return cfg


def model_config_from_dict(raw: dict[str, Any], where: str) -> ViSpeakConfig:
    """Multimodal settings of the checkpoint's config.json (vision/audio sub-configs are attached by the loader)."""
    model_type = raw.get("model_type")
    if model_type not in MODEL_TYPES:
        raise CheckpointError(f"{where}: model_type {model_type!r} is not one of {', '.join(MODEL_TYPES)}")
    combination = raw.get("combination")
    if combination is None:
        raise CheckpointError(
            f"{where}: no 'combination' setting: this is a plain VITA-1.5 config, not ViSpeak (no two-stream fusion)"
        )
    if combination not in COMBINATIONS:
        raise CheckpointError(f"{where}: combination {combination!r} is not one of {', '.join(COMBINATIONS)}")
    return ViSpeakConfig(
        llm=llm_config_from_dict(raw, where),
        model_type=model_type,
        mm_hidden_size=int(raw.get("mm_hidden_size", 4096)),
        mm_projector_type=str(raw.get("mm_projector_type", "mlp2x_gelu")),
        pooling_size=int(raw.get("pooling_size", 1)),
        combination=combination,
        use_informative_head=bool(raw.get("use_informative_head", False)),
        image_aspect_ratio=str(raw.get("image_aspect_ratio", "square")),
        mm_vision_tower=raw.get("mm_vision_tower"),
        mm_audio_encoder=raw.get("mm_audio_encoder"),
        max_length=raw.get("tokenizer_model_max_length"),
        raw=dict(raw),
    )


def vision_config_from_folder(folder: Path) -> VisionConfig:
    """Read the InternViT folder's config.json (and preprocessor_config.json for mean/std when present)."""
    path = folder / "config.json"
    if not path.is_file():
        raise CheckpointError(f"vision setting num_attention_heads: no config.json in vision tower folder {folder}")
    raw = read_json(path)
    for name in ("num_attention_heads", "layer_norm_eps", "hidden_act"):
        if name not in raw:
            raise CheckpointError(f"vision setting {name!r} missing in {path}")
    kwargs: dict[str, Any] = {
        "hidden_size": int(raw.get("hidden_size", 1024)),
        "intermediate_size": int(raw.get("intermediate_size", 4096)),
        "num_hidden_layers": int(raw.get("num_hidden_layers", 24)),
        "num_attention_heads": int(raw["num_attention_heads"]),
        "image_size": int(raw.get("image_size", 448)),
        "patch_size": int(raw.get("patch_size", 14)),
        "layer_norm_eps": float(raw["layer_norm_eps"]),
        "norm_type": str(raw.get("norm_type", "layer_norm")),
        "hidden_act": str(raw["hidden_act"]),
        "qkv_bias": bool(raw.get("qkv_bias", True)),
        "qk_normalization": bool(raw.get("qk_normalization", False)),
    }
    pre = folder / "preprocessor_config.json"
    if pre.is_file():
        praw = read_json(pre)
        if "image_mean" in praw and "image_std" in praw:
            kwargs["image_mean"] = tuple(float(x) for x in praw["image_mean"])
            kwargs["image_std"] = tuple(float(x) for x in praw["image_std"])
    return VisionConfig(**kwargs)


def _lookup(tree: dict[str, Any], dotted: str, path: Path) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise CheckpointError(f"audio setting {dotted!r} missing in {path}")
        node = node[part]
    return node


def audio_config_from_folder(folder: Path) -> AudioConfig:
    """Read the VITA-1.5 audio-encoder folder's train.yaml (safe YAML: plain data only)."""
    path = folder / "train.yaml"
    if not path.is_file():
        raise CheckpointError(
            f"audio setting transformer-attention-heads: no train.yaml in audio encoder folder {folder}"
        )
    try:
        with open(path, encoding="utf-8") as f:
            tree = yaml.safe_load(f)
    except (OSError, ValueError, yaml.YAMLError) as exc:  # ValueError: UnicodeDecodeError (binary garbage)
        raise CheckpointError(f"cannot read {path}: {' '.join(str(exc).split())}") from None  # YAML errors: lines
    if not isinstance(tree, dict):
        raise CheckpointError(f"{path}: expected a mapping")
    layout = _lookup(tree, "encoder_conf.overview_conf.encoder-layer-config", path)
    if layout != "subsampling-transformer":
        raise CheckpointError(
            f"audio setting encoder-layer-config {layout!r} in {path} is not 'subsampling-transformer'"
        )
    sub = "encoder_conf.para_conf.subsampling."
    tr = "encoder_conf.para_conf.transformer."
    fb = "dataset_conf.fbank_conf."

    def get(key: str, default: Any = None, required: bool = True) -> Any:
        try:
            return _lookup(tree, key, path)
        except CheckpointError:
            if required:
                raise
            return default

    ffn = get(tr + "transformer-positionwise-layer-type", "linear", required=False)
    if ffn != "linear":
        raise CheckpointError(f"audio setting transformer-positionwise-layer-type {ffn!r} in {path} is not 'linear'")
    resample = get("dataset_conf.resample_conf.resample_rate", 16000, required=False)
    fbank = FbankConfig(
        sample_rate=int(resample),
        num_mel_bins=int(get(fb + "num_mel_bins")),
        frame_length_ms=float(get(fb + "frame_length")),
        frame_shift_ms=float(get(fb + "frame_shift")),
    )
    return AudioConfig(
        input_dim=int(get("input_dim")),
        subsampling_rate=int(get(sub + "subsampling-rate")),
        subsampling_output_dim=int(get(sub + "subsampling-output-dim")),
        transformer_input_dim=int(get(tr + "transformer-input-dim")),
        attention_dim=int(get(tr + "transformer-attention-dim")),
        attention_heads=int(get(tr + "transformer-attention-heads")),
        linear_units=int(get(tr + "transformer-linear-units")),
        num_blocks=int(get(tr + "transformer-num-blocks")),
        input_layer=str(get(tr + "transformer-input-layer")),
        pos_enc_class=str(get(tr + "transformer-pos-enc-class")),
        normalize_before=bool(get(tr + "transformer-normalize-before")),
        concat_after=bool(get(tr + "transformer-concat-after")),
        chunk_size=int(get(tr + "transformer-chunk_size")),
        left_chunks=int(get(tr + "transformer-left_chunks")),
        dynamic_chunks=bool(get(tr + "transformer-dynamic-chunks")),
        enc_out_dim=int(get("model_conf.enc_out_dim")),
        llm_embed_dim=int(get("model_conf.llm_embed_dim")),
        adapter_type=str(get("model_conf.adpter_type")),
        kernel_size=int(get("model_conf.kernel_size")),
        activation=str(get("model_conf.activation_func")),
        norm=str(get("model_conf.norm")),
        fbank=fbank,
    )
