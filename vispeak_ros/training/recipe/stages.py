"""Stage configuration (YAML in `training/stageN.yaml`) and what each stage trains.

Frozen/trainable per stage and the learning rates follow the official training scripts:
- stage 0, connector alignment (`pretrain_mlp`): LLM frozen, no LoRA; the vision projector, the audio adapter and
  the fusion gate train, all at 5e-4; batch 4 x accumulation 4.
- stage 1 (offline omni), stage 2 (streaming; informative head re-initialised and trained with the focal loss),
  stage 3 (ViSpeak-Instruct, 2 epochs, at least 8 frames per video): LoRA r 128 / alpha 256 / dropout 0.05 on the
  LLM's linear layers (q, k, v, o, gate, up, down; not lm_head), the projector at 1e-5, fusion gate and informative
  head at the base 1e-4; the audio adapter is frozen; batch 2 x accumulation 4.
Everywhere: vision tower and audio encoder frozen, AdamW, weight decay 0, cosine schedule with 3 % warm-up,
gradient clipping 1.0, max length 6200, bf16, gradient checkpointing. The projector LR group is the official one:
parameters of `mm_projector` and `audio_encoder.adpter`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from vispeak_ros.model.fusion import StreamFusion
from vispeak_ros.model.heads import InformativeHead
from vispeak_ros.model.vision import build_projector
from vispeak_ros.model.vispeak import ViSpeakForCausalLM
from vispeak_ros.training.recipe.media import MediaOptions

MODULES = ("mm_projector", "audio_adapter", "fusion", "informative_head", "llm")
PROJECTOR_PREFIXES = ("mm_projector.", "audio_encoder.adpter.")
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class ConfigError(ValueError):
    """A stage configuration is wrong; the message names the file and the key."""


@dataclass
class ModelSpec:
    init_from: str = ""  # checkpoint folder in the loader's layout (a plain VITA-1.5 one is accepted for stage 0)
    vision_tower: str | None = None  # local InternViT-300M-448px folder (None: the checkpoint's config)
    audio_encoder: str | None = None  # local VITA-1.5 audio-encoder folder
    fresh: list[str] = field(default_factory=list)  # modules re-initialised before training
    pooling_size: int | None = None  # frame token pooling (1 in stages 0-1: 256 tokens per frame; 2 after: 64)
    dtype: str = "float32"  # weights as loaded (mixed precision computes in bf16; master weights stay float32)


@dataclass
class LoraSpec:
    r: int = 128
    alpha: int = 256
    dropout: float = 0.05
    targets: list[str] = field(default_factory=lambda: list(LORA_TARGETS))


@dataclass
class TrainSpec:
    epochs: float = 1.0
    max_steps: int | None = None  # optimizer steps; overrides epochs
    per_device_batch: int = 2
    grad_accum: int = 4
    lr: float = 1e-4
    projector_lr: float | None = 1e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    max_grad_norm: float = 1.0
    max_length: int = 6200
    mixed_precision: str = "bf16"  # no | fp16 | bf16 (CPU runs use "no" unless told otherwise)
    gradient_checkpointing: bool = True
    informative: bool = False  # the informative head's focal loss joins the LM loss
    informative_weight: float = 1.0
    seed: int = 42
    save_steps: int = 500
    save_total_limit: int | None = 10
    logging_steps: int = 1
    num_workers: int = 4
    skip_bad_items: bool = True
    threads: int | None = None  # torch CPU threads per process


@dataclass
class StageConfig:
    stage: int
    name: str = ""
    model: ModelSpec = field(default_factory=ModelSpec)
    data: list[dict[str, Any]] = field(default_factory=list)
    media: MediaOptions = field(default_factory=MediaOptions)
    train: TrainSpec = field(default_factory=TrainSpec)
    lora: LoraSpec | None = None
    trainable: list[str] = field(default_factory=list)
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return cls(**raw)


def load_config(path: str | Path, stage: int | None = None) -> StageConfig:
    """A stage YAML; `stage` (the command line's) must agree with the file's."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("stage"), int):
        raise ConfigError(f"{path}: expected a mapping with an integer 'stage'")
    if stage is not None and raw["stage"] != stage:
        raise ConfigError(f"{path}: is a stage {raw['stage']} config, not stage {stage}")
    if raw["stage"] not in (0, 1, 2, 3):
        raise ConfigError(f"{path}: stage must be 0 (alignment), 1, 2 or 3, got {raw['stage']}")
    parts = dict(raw)
    try:
        parts["model"] = _build(ModelSpec, raw.get("model", {}), f"{path}: model")
        parts["media"] = _build(MediaOptions, raw.get("media", {}), f"{path}: media")
        parts["train"] = _build(TrainSpec, raw.get("train", {}), f"{path}: train")
        parts["lora"] = None if raw.get("lora") is None else _build(LoraSpec, raw["lora"], f"{path}: lora")
        config = _build(StageConfig, {**parts, "source": str(path)}, str(path))
    except TypeError as error:
        raise ConfigError(f"{path}: {error}") from None
    if not isinstance(config.data, list) or not all(isinstance(e, dict) for e in config.data):
        raise ConfigError(f"{path}: data must be a list of dataset entries")
    bad = sorted(set(config.trainable) - set(MODULES))
    if bad:
        raise ConfigError(f"{path}: trainable module(s) {', '.join(bad)} not in {', '.join(MODULES)}")
    bad = sorted(set(config.model.fresh) - {"fusion", "informative_head", "mm_projector"})
    if bad:
        raise ConfigError(f"{path}: model.fresh {', '.join(bad)}: only fusion, informative_head, mm_projector")
    if config.train.mixed_precision not in ("no", "fp16", "bf16"):
        raise ConfigError(f"{path}: train.mixed_precision must be no, fp16 or bf16")
    if config.train.per_device_batch < 1 or config.train.grad_accum < 1:
        raise ConfigError(f"{path}: train.per_device_batch and train.grad_accum must be >= 1")
    return config


def dump(config: StageConfig) -> str:
    def plain(obj: Any) -> Any:
        return asdict(obj) if is_dataclass(obj) else obj

    return yaml.safe_dump({k: plain(v) for k, v in config.as_dict().items()}, sort_keys=False)


def module(model: ViSpeakForCausalLM, name: str) -> torch.nn.Module:
    part = model.audio_encoder.adpter if name == "audio_adapter" and model.audio_encoder else getattr(model, name, None)
    if not isinstance(part, torch.nn.Module):
        raise ConfigError(f"the model has no {name} to train")
    return part


def reinitialise(model: ViSpeakForCausalLM, names: list[str], seed: int) -> None:
    """Fresh modules, built as the model builds them (the official stage 2 builds a new informative head; stage 0
    from VITA-1.5 a new fusion gate)."""
    torch.manual_seed(seed)
    cfg, hidden = model.config, model.config.hidden_size
    for name in names:
        if name == "informative_head":
            fresh: torch.nn.Module = InformativeHead(hidden)
            cfg.use_informative_head = True
        elif name == "fusion":
            fresh = StreamFusion(cfg.combination, hidden)
        else:
            fresh = build_projector(cfg.mm_projector_type, cfg.mm_hidden_size, hidden)
        setattr(model, name, fresh.to(model.device, model.dtype))


def set_trainable(model: ViSpeakForCausalLM, names: list[str]) -> None:
    """Everything frozen, then the named modules trainable (LoRA adds its own parameters later)."""
    model.requires_grad_(False)
    for name in names:
        module(model, name).requires_grad_(True)


def param_groups(model: torch.nn.Module, lr: float, projector_lr: float | None, weight_decay: float) -> list[dict]:
    """The official grouping: projector/adapter parameters at `projector_lr` when set, the rest at `lr`."""
    base, projector = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_projector = projector_lr is not None and any(f".{p}" in f".{name}" for p in PROJECTOR_PREFIXES)
        (projector if is_projector else base).append(param)
    groups = [{"params": base, "lr": lr, "weight_decay": weight_decay, "name": "base"}]
    if projector:
        groups.append({"params": projector, "lr": projector_lr, "weight_decay": weight_decay, "name": "projector"})
    return [g for g in groups if g["params"]]
