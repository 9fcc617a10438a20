"""The assistant's configuration: one typed, validated object, loaded from YAML.

The keys are the ROS parameter names of the `vispeak` node, so one file serves `ros2 run ... --params-file`,
the DDS-mode node, replay and the demo. A file may be a plain mapping or the ROS 2 params format
(`vispeak: ros__parameters: {...}`). Every bad value is refused with one line naming the key, the value and
what is allowed; unknown keys are refused too (a typo must not silently fall back to a default).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from vispeak_ros.core.events import Behaviour
from vispeak_ros.core.trigger import DEFAULT_THRESHOLD

BACKENDS = ("torch", "onnxruntime", "tensorrt", "auto")
ORT_PROVIDERS = ("auto", "cpu", "cuda")
# fp32 and int8 run in onnxruntime (int8: the gated dynamic variant) and TensorRT (int8: a Q/DQ graph); the others are
# TensorRT engine precisions only (vispeak_ros.engines.device_profiles.PRECISIONS)
ENGINE_PRECISIONS = ("fp32", "fp16", "bf16", "int8", "fp8", "int4")
DTYPES = ("float32", "float16", "bfloat16")
ALIGNMENTS = ("trained", "pad")
SYSTEM_PROMPTS = ("vispeak", "online")
FRAME_POLICIES = ("latest", "official")
BEHAVIOURS = tuple(b.name.lower() for b in Behaviour if b is not Behaviour.NONE)


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the key."""


@dataclass(frozen=True)
class RuntimeConfig:
    checkpoint: str = ""  # checkpoint directory; empty = the bundled demo checkpoint
    vision_tower: str = ""  # InternViT folder; empty = from the checkpoint's config when it exists
    audio_encoder: str = ""  # VITA audio-encoder folder (train.yaml, global_cmvn); empty = from the config
    backend: str = "torch"  # torch | onnxruntime | tensorrt | auto (TensorRT, ORT CUDA, ORT CPU, torch; logged)
    engine_dir: str = ""  # exported graphs / engines: a folder with manifest.json, or a cache root; "" = XDG cache
    ort_provider: str = "auto"  # onnxruntime execution provider: auto (cuda when offered, else cpu), cpu, cuda
    engine_precision: str = "fp32"  # fp32; int8; fp16, bf16, fp8, int4 (TensorRT); below fp32 only if gate-accepted
    dtype: str = "float32"
    device: str = "cpu"
    trigger_threshold: float = DEFAULT_THRESHOLD  # speak when the last 3 probabilities sum above
    trigger_release: float = 1.0  # < 1: after an answer, no trigger until a probability falls below (core.trigger)
    window_segments: int = 60  # segments kept in the KV cache besides the system prompt (attention sink)
    max_answer_tokens: int = 128
    audio_questions: bool = False  # reactive decision at audio seg rows (☞); see the runtime README
    alignment: str = "trained"  # "trained": answer tokens pair with the next user positions; "pad": at once
    behaviours: tuple[str, ...] = BEHAVIOURS  # behaviours whose events are published
    system_prompt: str = "vispeak"
    frame_policy: str = "latest"
    max_input_latency_s: float = 0.5
    segment_queue_size: int = 8  # segments waiting for the model; the oldest is dropped beyond this

    def __post_init__(self) -> None:
        _choice("backend", self.backend, BACKENDS)
        _choice("ort_provider", self.ort_provider, ORT_PROVIDERS)
        _choice("engine_precision", self.engine_precision, ENGINE_PRECISIONS)
        if not isinstance(self.engine_dir, str):
            raise ConfigError(f"engine_dir must be a path string, got {self.engine_dir!r}")
        _choice("dtype", self.dtype, DTYPES)
        _choice("alignment", self.alignment, ALIGNMENTS)
        _choice("system_prompt", self.system_prompt, SYSTEM_PROMPTS)
        _choice("frame_policy", self.frame_policy, FRAME_POLICIES)
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            raise ConfigError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        _range("trigger_threshold", self.trigger_threshold, 0.0, 3.0)
        _range("trigger_release", self.trigger_release, 0.0, 1.0)
        if not isinstance(self.audio_questions, bool):
            raise ConfigError(f"audio_questions must be true or false, got {self.audio_questions!r}")
        _range("window_segments", self.window_segments, 1, 3600)
        _range("max_answer_tokens", self.max_answer_tokens, 1, 2048)
        _range("max_input_latency_s", self.max_input_latency_s, 0.0, 10.0)
        _range("segment_queue_size", self.segment_queue_size, 1, 1000)
        unknown = [b for b in self.behaviours if b not in BEHAVIOURS]
        if unknown:
            raise ConfigError(f"behaviours: unknown {unknown}; allowed: {', '.join(BEHAVIOURS)}")

    @property
    def enabled_behaviours(self) -> frozenset[Behaviour]:
        return frozenset(Behaviour[name.upper()] for name in self.behaviours)

    def with_overrides(self, **overrides: Any) -> RuntimeConfig:
        """A copy with some values replaced, validated the same way as a file."""
        return from_mapping({**self.as_dict(), **overrides}, source="overrides")

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")


def _range(key: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"{key} must be in [{low}, {high}], got {value!r}")


def from_mapping(values: dict[str, Any], source: str = "config") -> RuntimeConfig:
    """Build a config from a mapping (a parsed YAML file or ROS parameters)."""
    known = {f.name for f in fields(RuntimeConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        if key == "behaviours":  # a YAML list, or a comma-separated string (ROS string parameter)
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{source}: behaviours must be a list of names, got {value!r}")
            value = tuple(str(v).lower() for v in value)
        cleaned[key] = value
    try:
        return RuntimeConfig(**cleaned)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def load_config(path: str | Path, node_name: str = "vispeak") -> RuntimeConfig:
    """Load a YAML file: a plain mapping, or ROS 2 params format with a `<node_name>: ros__parameters:` section."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    if any(isinstance(v, dict) and "ros__parameters" in v for v in data.values()):
        section = data.get(node_name) or data.get(f"/{node_name}") or data.get(f"/**/{node_name}") or data.get("/**")
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict):
            raise ConfigError(f"{path}: ROS params file has no '{node_name}: ros__parameters:' section")
        data = section["ros__parameters"]
    return from_mapping(data, source=str(path))
