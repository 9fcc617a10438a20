"""The TensorRT engine cache: where built engines live, how they are keyed, and how a stale one is recognised.

Layout under `<engine-dir or $XDG_CACHE_HOME/vispeak_ros/engines>/tensorrt/`:

    <key[:20]>/metadata.json       everything the key was made of, the engines' sizes and sha256, the gate verdict
    <key[:20]>/<graph>.engine      one serialized engine per graph (vision, audio, llm_step)
    timing/<device[:16]>.cache     the builder's timing cache, one per GPU + TensorRT + CUDA (shared by builds)

The key is a sha256 over the environment (GPU name and compute capability, TensorRT and CUDA versions, JetPack's
L4T release when present) and the build request (model checksum, the sha256 of every ONNX graph built, precision,
device profile, optimisation profile shapes, builder flags). An engine is only ever loaded from the folder of the
exact key; `resolve` explains a miss by comparing the request with the metadata of the other engines of the same
model ("stale": same GPU, something else changed; "foreign": built on another GPU or JetPack), and either asks for
a build (`rebuild=True`, the builder's default) or refuses with that explanation (`rebuild=False`, always so at
run time: a node never builds). Nothing here imports TensorRT.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vispeak_ros.runtime.backends.artifacts import cache_root

KEY_VERSION = 1
METADATA = "metadata.json"
L4T_RELEASE = Path("/etc/nv_tegra_release")
_DEVICE_FIELDS = ("gpu_name", "compute_capability", "l4t_version")
_TOOL_FIELDS = ("tensorrt_version", "cuda_version")
_BUILD_COMMAND = "vispeak-build-engine --format tensorrt"
#: the TensorRT major version the builder and backend are written for (named tensors, INT64 I/O, IProgressMonitor,
#: BF16 / INT4 builder flags); JetPack 6.0 ships 8.6, JetPack 6.1 and later ship 10.3
TENSORRT_MAJOR = 10


class EngineCacheError(RuntimeError):
    """No usable engine: the message says which, why, and what to run."""


@dataclass(frozen=True)
class Environment:
    """The machine an engine is built for (an engine runs only where all of these are equal)."""

    gpu_name: str
    compute_capability: str  # "8.7"
    tensorrt_version: str
    cuda_version: str
    l4t_version: str | None = None  # JetPack's L4T release ("36.4.0"), None off Jetson

    def device_id(self) -> str:
        """A short id of GPU + tools, for the timing cache's file name."""
        return _digest({k: v for k, v in asdict(self).items()})[:16]


@dataclass(frozen=True)
class BuildRequest:
    """What is built: every field goes into the key and into the metadata."""

    model_checksum: str
    graphs: dict[str, str]  # graph name -> sha256 of the ONNX file the engine is built from
    precision: str
    device_profile: str
    profile_shapes: dict[str, Any]  # graph name -> {profile name: {input: [[min], [opt], [max]] dims}}
    build_flags: dict[str, Any] = field(default_factory=dict)  # workspace, optimisation level, builder flags


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def cache_key(env: Environment, request: BuildRequest) -> str:
    """sha256 hex over the key version, the environment and the request (canonical JSON)."""
    return _digest({"key_version": KEY_VERSION, "environment": asdict(env), "request": asdict(request)})


def read_l4t_version(path: str | Path = L4T_RELEASE) -> str | None:
    """`/etc/nv_tegra_release`'s "# R36 (release), REVISION: 4.0, ..." -> "36.4.0"; None where it is absent."""
    path = Path(path)
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    found = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)", text)
    if not found:
        raise EngineCacheError(f"{path}: unrecognised L4T release line {text.splitlines()[0] if text else ''!r}")
    return f"{found.group(1)}.{found.group(2).rstrip('.')}"


def tensorrt_version_problem(version: str) -> str | None:
    """Why this TensorRT version cannot be used (one line), or None."""
    major = version.split(".")[0]
    if not major.isdigit() or int(major) < TENSORRT_MAJOR:
        return (f"TensorRT {version} found; engines here need TensorRT {TENSORRT_MAJOR} or later (JetPack 6.1+, or "
                f"pip install tensorrt on a desktop)")  # fmt: skip
    return None


def detect_environment() -> Environment:
    """This machine's GPU and tools (needs torch with CUDA and the `tensorrt` package)."""
    import tensorrt as trt
    import torch

    if not torch.cuda.is_available():
        raise EngineCacheError("no CUDA device visible to torch (TensorRT engines need one)")
    index = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return Environment(
        gpu_name=torch.cuda.get_device_name(index),
        compute_capability=f"{major}.{minor}",
        tensorrt_version=str(trt.__version__),
        cuda_version=str(torch.version.cuda),
        l4t_version=read_l4t_version(),
    )


@dataclass(frozen=True)
class Resolution:
    """The outcome of a cache lookup: `ready` (load `folder`) or `build` (into `folder`, replacing `stale`)."""

    state: str  # "ready" | "build"
    folder: Path
    key: str
    reasons: tuple[str, ...] = ()  # why a build is needed (empty when nothing was cached for this model)
    stale: tuple[Path, ...] = ()  # folders a successful build replaces (same device, out of date)


@dataclass(frozen=True)
class Entry:
    folder: Path
    metadata: dict[str, Any] | None  # None when the metadata is missing or unreadable
    size_bytes: int
    problem: str | None = None


def _differences(env: Environment, request: BuildRequest, meta: dict[str, Any]) -> tuple[str, list[str]]:
    """("foreign" | "stale", what differs) between the wanted engine and one built before."""
    have_env, have_req = meta.get("environment", {}), meta.get("request", {})
    want_env, want_req = asdict(env), asdict(request)
    device = [k for k in _DEVICE_FIELDS if have_env.get(k) != want_env[k]]
    diffs = [f"{k} {have_env.get(k)!r} (here {want_env[k]!r})" for k in (*device, *_TOOL_FIELDS)
             if have_env.get(k) != want_env[k]]  # fmt: skip
    for name in ("model_checksum", "precision", "device_profile"):
        if have_req.get(name) != want_req[name]:
            diffs.append(f"{name} {str(have_req.get(name))[:16]!r} (wanted {str(want_req[name])[:16]!r})")
    for name in ("graphs", "profile_shapes", "build_flags"):
        if have_req.get(name) != want_req[name]:
            diffs.append(f"{name} differ")
    if meta.get("key_version") != KEY_VERSION:
        diffs.append(f"key version {meta.get('key_version')} (this version writes {KEY_VERSION})")
    return ("foreign" if device else "stale"), diffs


class EngineCache:
    """One cache root; see the module doc for the layout."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else cache_root() / "tensorrt"

    def folder(self, key: str) -> Path:
        return self.root / key[:20]

    def timing_cache_path(self, env: Environment) -> Path:
        return self.root / "timing" / f"{env.device_id()}.cache"

    # ----------------------------------------------------------------- reading
    def read_metadata(self, folder: Path) -> dict[str, Any]:
        path = folder / METADATA
        if not path.is_file():
            raise EngineCacheError(f"{folder}: no {METADATA} (an interrupted build?); rebuild with {_BUILD_COMMAND}")
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise EngineCacheError(f"{path}: not valid JSON ({error.msg}); rebuild with {_BUILD_COMMAND}") from None
        if not isinstance(meta, dict):
            raise EngineCacheError(f"{path}: not a JSON object; rebuild with {_BUILD_COMMAND}")
        return meta

    def validate(self, folder: Path, env: Environment, request: BuildRequest, *, hash_files: bool = False) -> None:
        """Raise `EngineCacheError` unless `folder` holds complete engines built for exactly this request here.

        Engine files are checked by size (cheap, at every start) or, with `hash_files`, by sha256 (reads every
        engine: for callers that can afford it)."""
        meta = self.read_metadata(folder)
        key = cache_key(env, request)
        if meta.get("key") != key:
            kind, diffs = _differences(env, request, meta)
            raise EngineCacheError(f"{folder}: {kind} engine: " + "; ".join(diffs or ["key differs"]))
        engines = meta.get("engines")
        if not isinstance(engines, dict) or set(engines) != set(request.graphs):
            raise EngineCacheError(f"{folder}: metadata lists engines {sorted(engines or {})}, "
                                   f"wanted {sorted(request.graphs)}; rebuild with {_BUILD_COMMAND}")  # fmt: skip
        for info in engines.values():
            path = folder / info.get("file", "")
            if not path.is_file():
                raise EngineCacheError(f"{path}: engine file missing; rebuild with {_BUILD_COMMAND}")
            if path.stat().st_size != info.get("size"):
                raise EngineCacheError(f"{path}: size {path.stat().st_size} differs from the metadata's "
                                       f"{info.get('size')} (changed since the build); rebuild")  # fmt: skip
            if hash_files and _file_sha256(path) != info.get("sha256"):
                raise EngineCacheError(f"{path}: sha256 differs from the metadata (changed since the build); rebuild")

    def entries(self) -> list[Entry]:
        """Every engine folder under the root (for `--list`), oldest first."""
        found = []
        if not self.root.is_dir():
            return found
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and p.name != "timing" and p.name[0] != "."):
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            try:
                found.append(Entry(folder, self.read_metadata(folder), size))
            except EngineCacheError as error:
                found.append(Entry(folder, None, size, str(error)))
        return sorted(found, key=lambda e: (e.metadata or {}).get("built_at", ""))

    def resolve(self, env: Environment, request: BuildRequest, *, rebuild: bool) -> Resolution:
        """`ready` when the exact engines are cached; else `build` (rebuild=True) or `EngineCacheError` naming
        what differs from the engines cached for this model (rebuild=False)."""
        key = cache_key(env, request)
        folder = self.folder(key)
        reasons: list[str] = []
        stale: list[Path] = []
        if folder.is_dir():
            try:
                self.validate(folder, env, request)
                return Resolution("ready", folder, key)
            except EngineCacheError as error:
                reasons.append(str(error))
                stale.append(folder)
        for entry in self.entries():
            meta = entry.metadata
            if entry.folder == folder or meta is None:
                continue
            if meta.get("request", {}).get("model_checksum") != request.model_checksum:
                continue
            kind, diffs = _differences(env, request, meta)
            reasons.append(f"{entry.folder.name}: {kind} ({'; '.join(diffs)})")
            same_target = all(meta.get("request", {}).get(k) == getattr(request, k)
                              for k in ("precision", "device_profile"))  # fmt: skip
            if kind == "stale" and same_target:
                stale.append(entry.folder)
        if rebuild:
            return Resolution("build", folder, key, tuple(reasons), tuple(stale))
        what = (f"no TensorRT engine for model {request.model_checksum[:16]}, precision {request.precision}, "
                f"profile {request.device_profile} on {env.gpu_name}")  # fmt: skip
        detail = ("; cached for this model: " + " | ".join(reasons)) if reasons else ""
        raise EngineCacheError(f"{what}{detail}; rebuilding is off here: run {_BUILD_COMMAND}")

    # ----------------------------------------------------------------- writing
    def write(
        self,
        env: Environment,
        request: BuildRequest,
        engines: dict[str, Path],
        *,
        extra: dict[str, Any] | None = None,
        replace: tuple[Path, ...] = (),
    ) -> Path:
        """Move built engine files into the key's folder with their metadata (written last: a folder without
        metadata is an interrupted build), then remove the `replace` folders (stale engines of the same target)."""
        import datetime

        key = cache_key(env, request)
        folder = self.folder(key)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=self.root))
        infos = {}
        for name, source in engines.items():
            target = staging / f"{name}.engine"
            shutil.move(str(source), target)
            infos[name] = {"file": target.name, "size": target.stat().st_size, "sha256": _file_sha256(target)}
        meta = {
            "key": key,
            "key_version": KEY_VERSION,
            "environment": asdict(env),
            "request": asdict(request),
            "engines": infos,
            "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **(extra or {}),
        }
        (staging / METADATA).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
        for old in replace:
            if old != folder and old.is_dir():
                shutil.rmtree(old)
        return folder

    def update_metadata(self, folder: Path, **values: Any) -> None:
        """Add fields (the gate's verdict) to a written entry."""
        meta = self.read_metadata(folder)
        meta.update(values)
        (folder / METADATA).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    def clear(self, *, model_checksum: str | None = None) -> list[Path]:
        """Remove engine folders (all, or those of one model; unreadable ones always) and, when clearing all,
        the timing caches. Returns what was removed."""
        removed = []
        for entry in self.entries():
            checksum = (entry.metadata or {}).get("request", {}).get("model_checksum", "")
            if model_checksum is None or entry.metadata is None or checksum.startswith(model_checksum):
                shutil.rmtree(entry.folder)
                removed.append(entry.folder)
        timing = self.root / "timing"
        if model_checksum is None and timing.is_dir():
            shutil.rmtree(timing)
            removed.append(timing)
        for leftover in self.root.glob(".build-*") if self.root.is_dir() else ():
            shutil.rmtree(leftover, ignore_errors=True)
        return removed


def _file_sha256(path: Path) -> str:
    from vispeak_ros.runtime.backends.artifacts import file_sha256

    return file_sha256(path)
