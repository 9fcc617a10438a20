"""Load a published ViSpeak checkpoint directory, strictly, from safetensors only.

`load_checkpoint(path)` reads `config.json`, the weights (`model.safetensors` or the shards of
`model.safetensors.index.json`), the InternViT folder and the VITA-1.5 audio-encoder folder (given as arguments or
taken from the config's `mm_vision_tower` / `mm_audio_encoder` when they exist; relative paths are resolved against
the checkpoint directory), and the tokenizer files when present.

Rules: never open a pickle (`.bin`, `.pt`: refused by name, unopened), never run remote code, never touch the
network, never guess a setting. A plain VITA-1.5 checkpoint (no `model.combination.*` / `informative_head.*`) is
refused with a line that says so. Missing/unexpected keys and shape mismatches give one `CheckpointError` line.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from transformers.models.qwen2.modeling_qwen2 import Qwen2RotaryEmbedding

from vispeak_ros.model.config import (
    AudioConfig,
    VisionConfig,
    ViSpeakConfig,
    audio_config_from_folder,
    model_config_from_dict,
    read_json,
    vision_config_from_folder,
)
from vispeak_ros.model.errors import CheckpointError
from vispeak_ros.model.tokenizer import ViSpeakTokenizer, load_tokenizer
from vispeak_ros.model.vispeak import ViSpeakForCausalLM, from_checkpoint_key, to_checkpoint_key

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
VISION_PREFIX = "model.vision_tower.vision_tower."
AUDIO_PREFIX = "model.audio_encoder."


@dataclass
class CheckpointInfo:
    """What was loaded, for `vispeak-inspect` and logs."""

    path: Path
    weight_files: list[Path]
    dtype: torch.dtype
    vision_folder: Path | None
    audio_folder: Path | None
    notes: list[str] = field(default_factory=list)


@dataclass
class _Weights:
    """Key -> (file, shape, dtype) of every tensor, read from the safetensors headers only."""

    files: list[Path]
    entries: dict[str, tuple[Path, tuple[int, ...], str]]

    def shape(self, key: str) -> tuple[int, ...]:
        return self.entries[key][1]

    def has_prefix(self, prefix: str) -> bool:
        return any(k.startswith(prefix) for k in self.entries)


def _refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(f"{path}: refused: {path.suffix} files are pickles; only safetensors are loaded")


def _weight_files(root: Path) -> list[Path]:
    index = root / INDEX_FILE
    if index.is_file():
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{index}: no weight_map")
        names = list(dict.fromkeys(weight_map.values()))
        odd = [n for n in names if not isinstance(n, str) or Path(n).name != n or n in ("", ".", "..")]
        if odd:  # a shard is a file of this folder: no paths elsewhere (../, /etc/...), no numbers
            raise CheckpointError(f"{index}: shard {odd[0]!r} is not a file name in the checkpoint folder")
        files = [root / name for name in names]
        for f in files:
            _refuse_pickle(f)
            if not f.is_file():
                raise CheckpointError(f"{index} names shard {f.name}, which is missing in {root}")
        return files
    single = root / SINGLE_FILE
    if single.is_file():
        return [single]
    pickles = sorted(p.name for p in root.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(
            f"{root}: no safetensors weights; {', '.join(pickles)} refused (pickle): convert to safetensors first"
        )
    raise CheckpointError(f"{root}: neither {SINGLE_FILE} nor {INDEX_FILE}")


def _scan(files: list[Path]) -> _Weights:
    entries: dict[str, tuple[Path, tuple[int, ...], str]] = {}
    for f in files:
        try:
            with safe_open(str(f), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
                    piece = handle.get_slice(key)
                    entries[key] = (f, tuple(piece.get_shape()), piece.get_dtype())
        except Exception as exc:  # OSError, or safetensors' own SafetensorError for a corrupt header
            raise CheckpointError(f"{f}: not a readable safetensors file ({exc})") from None
    return _Weights(files=files, entries=entries)


def _resolve_folder(root: Path, given: str | Path | None, configured: str | None) -> Path | None:
    """An explicit argument must exist; a configured path is used only when it exists (published ones are absolute
    paths on the authors' machines)."""
    if given is not None:
        folder = Path(given)
        folder = folder if folder.is_absolute() else (Path.cwd() / folder)
        if not folder.is_dir():
            raise CheckpointError(f"encoder folder not found: {folder}")
        return folder
    if configured:
        folder = Path(configured)
        folder = folder if folder.is_absolute() else root / folder
        if folder.is_dir():
            return folder
    return None


def _count_layers(weights: _Weights, pattern: str) -> int:
    regex = re.compile(pattern)
    found = {int(m.group(1)) for k in weights.entries if (m := regex.match(k))}
    return max(found) + 1 if found else 0


def _vision_config(weights: _Weights, folder: Path | None, configured: str | None) -> VisionConfig:
    if folder is None:
        raise CheckpointError(
            "vision setting num_attention_heads: vision tower folder not found "
            f"(config mm_vision_tower={configured!r}); pass vision_tower=<local InternViT-300M-448px folder>"
        )
    base = vision_config_from_folder(folder)
    p = VISION_PREFIX
    hidden = weights.shape(p + "embeddings.class_embedding")[-1]
    patch = weights.shape(p + "embeddings.patch_embedding.weight")[-1]
    positions = weights.shape(p + "embeddings.position_embedding")[1]
    grid = round((positions - 1) ** 0.5)
    return dataclasses.replace(
        base,
        hidden_size=hidden,
        patch_size=patch,
        image_size=grid * patch,
        num_hidden_layers=_count_layers(weights, re.escape(p) + r"encoder\.layers\.(\d+)\."),
        intermediate_size=weights.shape(p + "encoder.layers.0.mlp.fc1.weight")[0],
        qkv_bias=(p + "encoder.layers.0.attn.qkv.bias") in weights.entries,
        qk_normalization=(p + "encoder.layers.0.attn.q_norm.weight") in weights.entries,
    )


def _audio_config(weights: _Weights, folder: Path | None, configured: str | None) -> AudioConfig:
    if folder is None:
        raise CheckpointError(
            f"audio setting transformer-attention-heads: audio encoder folder not found "
            f"(config mm_audio_encoder={configured!r}); pass audio_encoder=<local VITA-1.5 audio-encoder folder>"
        )
    base = audio_config_from_folder(folder)
    p = AUDIO_PREFIX + "encoder.enc.1."
    blocks = _count_layers(weights, re.escape(p) + r"encoders\.(\d+)\.")
    return dataclasses.replace(base, num_blocks=blocks) if blocks else base


def _classify(root: Path, weights: _Weights) -> None:
    if not weights.has_prefix("model.combination.") and not weights.has_prefix("informative_head."):
        raise CheckpointError(
            f"{root} is a plain VITA-1.5 checkpoint (no model.combination.* or informative_head.* weights), not ViSpeak"
        )


def _is_float(safetensors_dtype: str) -> bool:
    return safetensors_dtype.startswith(("F", "BF"))  # F64 F32 F16 BF16 F8_*; not I*, U*, BOOL


def _key_report(root: Path, weights: _Weights, model: ViSpeakForCausalLM) -> None:
    state = model.state_dict()
    expected = {to_checkpoint_key(k): tuple(v.shape) for k, v in state.items()}
    floating = {to_checkpoint_key(k): v.is_floating_point() for k, v in state.items()}
    present = {k: v[1] for k, v in weights.entries.items()}
    missing = sorted(set(expected) - set(present))
    unexpected = sorted(set(present) - set(expected))
    wrong = sorted(k for k in set(expected) & set(present) if expected[k] != present[k])
    kinds = sorted(k for k in set(expected) & set(present) if floating[k] != _is_float(weights.entries[k][2]))
    if not (missing or unexpected or wrong or kinds):
        return

    def head(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (f", ... (+{len(keys) - 3})" if len(keys) > 3 else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {head(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {head(unexpected)}")
    if wrong:
        shapes = [f"{k} checkpoint {list(present[k])} vs model {list(expected[k])}" for k in wrong]
        parts.append(f"{len(wrong)} shape mismatch(es): {head(shapes)}")
    if kinds:
        dtypes = [f"{k} is {weights.entries[k][2]}, the model wants {'floats' if floating[k] else 'integers'}"
                  for k in kinds]  # fmt: skip
        parts.append(f"{len(kinds)} wrong dtype(s): {head(dtypes)}")
    raise CheckpointError(f"{root}: " + "; ".join(parts))


def _read_state(weights: _Weights, dtype: torch.dtype | None, device: torch.device) -> dict[str, torch.Tensor]:
    """Tensors straight onto `device` (no full host copy of a 16 GB checkpoint first), converted one by one."""
    state: dict[str, torch.Tensor] = {}
    for f in weights.files:
        with safe_open(str(f), framework="pt", device=str(device)) as handle:
            for key in handle.keys():  # noqa: SIM118
                tensor = handle.get_tensor(key)
                if dtype is not None and tensor.is_floating_point():
                    tensor = tensor.to(dtype)
                ours = from_checkpoint_key(key)
                if ours is not None:
                    state[ours] = tensor
    return state


def build_model(config: ViSpeakConfig) -> ViSpeakForCausalLM:
    """Build on the meta device (no memory, no random init); weights are assigned afterwards."""
    with torch.device("meta"):
        return ViSpeakForCausalLM(config)


def _materialise_buffers(model: ViSpeakForCausalLM) -> None:
    """Non-persistent buffers are not in the checkpoint: rebuild the rotary table on the CPU."""
    model.llm.model.rotary_emb = Qwen2RotaryEmbedding(config=model.config.llm)
    leftovers = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftovers:
        raise CheckpointError(f"tensors left without weights: {', '.join(leftovers[:3])}")


def load_checkpoint(
    path: str | Path,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
    vision_tower: str | Path | None = None,
    audio_encoder: str | Path | None = None,
) -> ViSpeakForCausalLM:
    """Load a ViSpeak checkpoint directory strictly. `dtype=None` keeps the stored dtype.

    The returned model is in eval mode without gradients; `model.tokenizer` is a `ViSpeakTokenizer` or None (allowed
    for weight inspection, required for generation) and `model.checkpoint_info` says what was read.
    """
    root = Path(path)
    _refuse_pickle(root)
    if not root.exists():
        raise CheckpointError(f"checkpoint directory not found: {root}")
    if not root.is_dir():
        raise CheckpointError(f"{root}: not a directory; give the checkpoint directory (config.json + safetensors)")
    for given in (vision_tower, audio_encoder):
        if given is not None:
            _refuse_pickle(Path(given))
    raw = read_json(root / "config.json")
    weights = _scan(_weight_files(root))
    _classify(root, weights)
    config = model_config_from_dict(raw, str(root / "config.json"))
    notes = []
    has_head = weights.has_prefix("informative_head.")
    if has_head != config.use_informative_head:
        notes.append(f"config use_informative_head={raw.get('use_informative_head')!r}; weights decide: {has_head}")
    config.use_informative_head = has_head

    vision_folder = audio_folder = None
    if weights.has_prefix(VISION_PREFIX):
        vision_folder = _resolve_folder(root, vision_tower, config.mm_vision_tower)
        config.vision = _vision_config(weights, vision_folder, config.mm_vision_tower)
    if weights.has_prefix(AUDIO_PREFIX):
        audio_folder = _resolve_folder(root, audio_encoder, config.mm_audio_encoder)
        config.audio = _audio_config(weights, audio_folder, config.mm_audio_encoder)
        if config.audio.dynamic_chunks:
            notes.append("audio encoder trained with dynamic chunks; inference uses the static chunk mask")

    model = build_model(config)
    _key_report(root, weights, model)
    device = torch.device(device)
    model.load_state_dict(_read_state(weights, dtype, device), strict=True, assign=True)
    _materialise_buffers(model)
    model.to(device)  # moves the rebuilt rotary table; the weights are already there
    model.eval()
    model.requires_grad_(False)

    tokenizer: ViSpeakTokenizer | None = load_tokenizer(root)
    if tokenizer is None:
        notes.append("tokenizer: none (weights only; generation needs the tokenizer files)")
    model.tokenizer = tokenizer
    model.checkpoint_info = CheckpointInfo(
        path=root,
        weight_files=weights.files,
        dtype=model.dtype,
        vision_folder=vision_folder,
        audio_folder=audio_folder,
        notes=notes,
    )
    return model
