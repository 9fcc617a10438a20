"""Named TensorRT device profiles (Jetson AGX Orin, Orin NX / Nano, desktop Ada / Hopper) and the optimisation
profile shapes they give the streaming LLM step.

A profile is a small YAML file (`engine/profiles/*.yaml` of the repository, copied into the wheel and installed to
share/vispeak_ros/engine/profiles by colcon; see `profiles_dir`): which GPUs it is for
(compute capability, memory range, Jetson or not), the precisions that GPU runs, the builder workspace and
optimisation level, and the bounds of the streaming shapes (the longest window and system prompt an engine built
with it serves). `select_profile` picks the one profile that matches a GPU; `step_dims` turns a profile plus the
runtime's window into the min / opt / max of the step graph's two dynamic axes (`rows`, `past_rows`), for two
optimisation profiles: "segment" (a block of up to `MAX_BLOCK_ROWS + PROBE_MARGIN_ROWS` rows) and "decode" (one row,
the answer tokens of pad alignment). Pure Python: nothing here needs TensorRT or a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vispeak_ros.runtime.backends.session_backend import MAX_BLOCK_ROWS, PROBE_MARGIN_ROWS

#: every precision an engine may be built in; those in QDQ_PRECISIONS need a Q/DQ graph (see `tensorrt_build`)
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "fp8", "int4")
QDQ_PRECISIONS = frozenset({"int8", "fp8", "int4"})
#: TensorRT `BuilderFlag` names per precision (weakly typed network: the flags allow the lower precision)
PRECISION_FLAGS: dict[str, tuple[str, ...]] = {
    "fp32": (),
    "fp16": ("FP16",),
    "bf16": ("BF16",),
    "int8": ("FP16", "INT8"),
    "fp8": ("FP16", "FP8"),
    "int4": ("FP16", "INT4"),
}
MAX_SEGMENT_ROWS = MAX_BLOCK_ROWS + PROBE_MARGIN_ROWS  # the session's max_segment_tokens
_KEYS = {
    "name",
    "description",
    "match",
    "precisions",
    "default_precision",
    "workspace_mb",
    "builder_optimization_level",
    "max_window_segments",
    "max_sink_rows",
    "typical_sink_rows",
    "notes",
}
_MATCH_KEYS = {"compute_capability", "jetson", "min_memory_gb", "max_memory_gb"}


class ProfileError(ValueError):
    """A device profile file is invalid, or no / several profiles match; the message names the file or GPU."""


@dataclass(frozen=True)
class GpuInfo:
    """What profile selection needs to know about a GPU."""

    name: str
    compute_capability: str  # "8.7"
    memory_gb: float
    jetson: bool


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    compute_capability: tuple[str, ...]
    jetson: bool
    min_memory_gb: float
    max_memory_gb: float
    precisions: tuple[str, ...]
    default_precision: str
    workspace_mb: int
    builder_optimization_level: int
    max_window_segments: int
    max_sink_rows: int
    typical_sink_rows: int
    notes: str = ""
    source: str = field(default="", compare=False)

    def matches(self, gpu: GpuInfo) -> bool:
        return (
            gpu.compute_capability in self.compute_capability
            and gpu.jetson == self.jetson
            and self.min_memory_gb <= gpu.memory_gb < self.max_memory_gb
        )


def profiles_dir(module_file: str | Path = __file__) -> Path:
    """Where the device profiles are, for this module at `module_file`: `engine/profiles` of a source checkout (the
    single source of truth), the copy inside a pip-installed package (setup.py's build puts it there), or
    `share/vispeak_ros/engine/profiles` above the installed package (colcon / ament, CMakeLists.txt installs it)."""
    here = Path(module_file).resolve()
    checkout = here.parents[2] / "engine" / "profiles"
    packaged = here.parent / "profiles"
    if checkout.is_dir() and (checkout.parents[1] / "package.xml").is_file():  # not a stray engine/ in site-packages
        return checkout
    if packaged.is_dir():
        return packaged
    for prefix in here.parents[3:]:  # <prefix>/lib/pythonX.Y/site-packages/vispeak_ros/engines/device_profiles.py
        shared = prefix / "share" / "vispeak_ros" / "engine" / "profiles"
        if shared.is_dir():
            return shared
    raise ProfileError(f"device profiles not found in {checkout}, {packaged} nor share/vispeak_ros/engine/profiles "
                       f"above {here.parent}")  # fmt: skip


def _int(source: str, key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProfileError(f"{source}: {key} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _number(source: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ProfileError(f"{source}: {key} must be a number >= 0, got {value!r}")
    return float(value)


def parse_profile(data: Any, source: str) -> DeviceProfile:
    """Validate one parsed YAML mapping; every problem is one line naming `source` and the key."""
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ProfileError(f"{source}: unknown key(s) {', '.join(unknown)}")
    missing = sorted(_KEYS - {"notes", "description"} - set(data))
    if missing:
        raise ProfileError(f"{source}: missing key(s) {', '.join(missing)}")
    name = data["name"]
    if not isinstance(name, str) or not name.replace("_", "").isalnum():
        raise ProfileError(f"{source}: name must be letters, digits and underscores, got {name!r}")
    match = data["match"]
    if not isinstance(match, dict) or set(match) - _MATCH_KEYS or "compute_capability" not in match:
        raise ProfileError(f"{source}: match needs compute_capability and may have {', '.join(sorted(_MATCH_KEYS))}")
    caps = match["compute_capability"]
    caps = [caps] if isinstance(caps, (str, float)) else caps
    if not isinstance(caps, list) or not all(isinstance(c, (str, float)) for c in caps):
        raise ProfileError(f"{source}: match.compute_capability must be a string like '8.7' or a list of them")
    caps = [str(c) for c in caps]
    if not all(len(c.split(".")) == 2 and all(p.isdigit() for p in c.split(".")) for c in caps):
        raise ProfileError(f"{source}: match.compute_capability must look like '8.7', got {caps}")
    jetson = match.get("jetson", False)
    if not isinstance(jetson, bool):
        raise ProfileError(f"{source}: match.jetson must be true or false, got {jetson!r}")
    low = _number(source, "match.min_memory_gb", match.get("min_memory_gb", 0))
    high = _number(source, "match.max_memory_gb", match.get("max_memory_gb", 1e9))
    if low >= high:
        raise ProfileError(f"{source}: match.min_memory_gb {low} must be below match.max_memory_gb {high}")
    precisions = data["precisions"]
    if not isinstance(precisions, list) or not precisions or any(p not in PRECISIONS for p in precisions):
        raise ProfileError(
            f"{source}: precisions must be a non-empty list of {', '.join(PRECISIONS)}, got {precisions}"
        )
    if data["default_precision"] not in precisions:
        raise ProfileError(f"{source}: default_precision {data['default_precision']!r} is not in precisions")
    max_sink = _int(source, "max_sink_rows", data["max_sink_rows"], 1, 8192)
    typical = _int(source, "typical_sink_rows", data["typical_sink_rows"], 1, max_sink)
    return DeviceProfile(
        name=name,
        description=str(data.get("description", "")),
        compute_capability=tuple(caps),
        jetson=jetson,
        min_memory_gb=low,
        max_memory_gb=high,
        precisions=tuple(precisions),
        default_precision=data["default_precision"],
        workspace_mb=_int(source, "workspace_mb", data["workspace_mb"], 64, 1 << 20),
        builder_optimization_level=_int(source, "builder_optimization_level", data["builder_optimization_level"], 0, 5),
        max_window_segments=_int(source, "max_window_segments", data["max_window_segments"], 1, 3600),
        max_sink_rows=max_sink,
        typical_sink_rows=typical,
        notes=str(data.get("notes", "")).strip(),
        source=source,
    )


def load_profile(path: str | Path) -> DeviceProfile:
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ProfileError(f"{path}: cannot read ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ProfileError(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from None
    profile = parse_profile(data, str(path))
    if profile.name != path.stem:
        raise ProfileError(f"{path}: name {profile.name!r} must equal the file name {path.stem!r}")
    return profile


def load_profiles(folder: str | Path | None = None) -> dict[str, DeviceProfile]:
    """Every `*.yaml` profile in `folder` (default: the shipped ones), by name."""
    folder = Path(folder) if folder else profiles_dir()
    profiles = {}
    for path in sorted(folder.glob("*.yaml")):
        profile = load_profile(path)
        profiles[profile.name] = profile
    if not profiles:
        raise ProfileError(f"{folder}: no device profiles (*.yaml)")
    return profiles


def select_profile(gpu: GpuInfo, profiles: dict[str, DeviceProfile], name: str | None = None) -> DeviceProfile:
    """The profile named `name` (it must match the GPU's compute capability), or the single one matching `gpu`."""
    if name:
        if name not in profiles:
            raise ProfileError(f"unknown device profile {name!r}; known: {', '.join(sorted(profiles))}")
        chosen = profiles[name]
        if gpu.compute_capability not in chosen.compute_capability:
            raise ProfileError(
                f"device profile {name} is for compute capability {'/'.join(chosen.compute_capability)}; "
                f"{gpu.name} is {gpu.compute_capability}"
            )
        return chosen
    found = [p for p in profiles.values() if p.matches(gpu)]
    if len(found) == 1:
        return found[0]
    what = f"{gpu.name} (compute capability {gpu.compute_capability}, {gpu.memory_gb:.0f} GB, jetson={gpu.jetson})"
    if not found:
        raise ProfileError(f"no device profile matches {what}; known: {', '.join(sorted(profiles))} (use --profile)")
    raise ProfileError(f"several device profiles match {what}: {', '.join(p.name for p in found)} (use --profile)")


@dataclass(frozen=True)
class DimRange:
    min: int
    opt: int
    max: int

    def as_list(self) -> list[int]:
        return [self.min, self.opt, self.max]


def step_dims(profile: DeviceProfile, window_segments: int, frame_rows: int, audio_rows: int) -> dict[str, dict]:
    """Optimisation profiles of the LLM step as ranges of its named dynamic axes, by profile name.

    `rows`: a block (frame = frame_rows, audio = audio_rows, text and probes up to MAX_SEGMENT_ROWS) or one decode
    row. `past_rows`: the KV cache before the step, from empty (the system prompt's prefill) to one row short of
    the session's position bound (sink + window + one segment), tuned for the steady state (typical sink + full
    window)."""
    if window_segments > profile.max_window_segments:
        raise ProfileError(
            f"window_segments {window_segments} exceeds device profile {profile.name}'s max_window_segments "
            f"{profile.max_window_segments}"
        )
    if frame_rows < 0 or audio_rows < 0 or frame_rows + audio_rows == 0:
        raise ProfileError(f"a segment needs frame or audio rows, got frame_rows={frame_rows}, audio_rows={audio_rows}")
    window = window_segments * (frame_rows + audio_rows)
    past = DimRange(0, min(profile.typical_sink_rows + window, profile.max_sink_rows + window),
                    profile.max_sink_rows + window + MAX_SEGMENT_ROWS - 1)  # fmt: skip
    block = frame_rows or audio_rows
    return {
        "segment": {"rows": DimRange(1, block, MAX_SEGMENT_ROWS), "past_rows": past},
        "decode": {"rows": DimRange(1, 1, 1), "past_rows": past},
    }
