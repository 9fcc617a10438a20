"""The TensorRT part of `vispeak-build-engine`: build (or check) the engines of an ONNX export, list, clear.

    vispeak-build-engine --format tensorrt [--profile NAME] [--precision P] [--window-segments N] [--no-rebuild]
    vispeak-build-engine --list | --clear [--checkpoint DIR]

Building is idempotent: engines already cached for exactly this request (see `engine_cache`) are left alone, so
running it before every launch costs a lookup, never a build. Stale engines of the same target are replaced;
with `--no-rebuild` a missing or stale engine is reported and nothing is built (exit 4). Precisions other than
fp32 are judged by the agreement gate (TensorRT vs the onnxruntime FP32 export on held-out synthetic streams);
the verdict goes into the metadata and the runtime loads only accepted engines (exit 3 when rejected).
Exit status: 0 done, 2 bad input or no TensorRT / GPU, 3 rejected by the gate, 4 an engine is missing or stale
and rebuilding is off.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from vispeak_ros.engines.engine_cache import EngineCache, EngineCacheError

Say = Callable[[str], None]


def _error(message: str) -> None:
    print(f"vispeak-build-engine: error: {message}", file=sys.stderr)


def tensorrt_missing() -> str | None:
    """Why TensorRT cannot be used here (one line: not installed, or older than TensorRT 10), or None."""
    from vispeak_ros.engines.engine_cache import tensorrt_version_problem

    try:
        import tensorrt
    except ImportError as error:
        return f"tensorrt not installed ({error.name}): JetPack ships it; on a desktop pip install tensorrt"
    return tensorrt_version_problem(str(tensorrt.__version__))


def cache_for(engine_dir: Path | None) -> EngineCache:
    return EngineCache(Path(engine_dir) / "tensorrt" if engine_dir else None)


def list_engines(engine_dir: Path | None, say: Say = print) -> int:
    """One line per cached engine set (oldest first) and the total size."""
    cache = cache_for(engine_dir)
    entries = cache.entries()
    if not entries:
        say(f"no TensorRT engines under {cache.root}")
        return 0
    total = 0
    for entry in entries:
        total += entry.size_bytes
        meta = entry.metadata
        if meta is None:
            say(f"{entry.folder.name}  unreadable: {entry.problem}")
            continue
        env, req = meta.get("environment", {}), meta.get("request", {})
        gate = meta.get("gate")
        verdict = "-" if gate is None else ("accepted" if gate.get("accepted") else "rejected")
        l4t = f" L4T {env['l4t_version']}" if env.get("l4t_version") else ""
        say(f"{entry.folder.name}  model {str(req.get('model_checksum'))[:16]}  {req.get('precision')}  "
            f"{req.get('device_profile')}  {env.get('gpu_name')} (sm {env.get('compute_capability')}) "
            f"TensorRT {env.get('tensorrt_version')} CUDA {env.get('cuda_version')}{l4t}  "
            f"{entry.size_bytes / 1e6:.1f} MB  built {meta.get('built_at')}  gate {verdict}")  # fmt: skip
    say(f"{len(entries)} engine set(s), {total / 1e6:.1f} MB under {cache.root}")
    return 0


def clear_engines(engine_dir: Path | None, model_checksum: str | None, say: Say = print) -> int:
    removed = cache_for(engine_dir).clear(model_checksum=model_checksum)
    what = f"model {model_checksum[:16]}" if model_checksum else "all models"
    say(f"removed {len(removed)} folder(s) ({what}): " + (", ".join(p.name for p in removed) or "nothing cached"))
    return 0


def build_tensorrt(
    export_dir: Path,
    checkpoint: Path,
    checksum: str,
    *,
    engine_dir: Path | None,
    profile_name: str | None,
    precision: str | None,
    window_segments: int,
    rebuild: bool,
    force: bool,
    gate_options: dict | None = None,
    say: Say = print,
) -> int:
    """Build (or find up to date) the engines of `export_dir` for this GPU; see the module doc for exit codes."""
    missing = tensorrt_missing()
    if missing:
        _error(missing)
        return 2
    import tensorrt as trt

    from vispeak_ros.engines.device_profiles import ProfileError, load_profiles, select_profile
    from vispeak_ros.engines.engine_cache import detect_environment
    from vispeak_ros.engines.tensorrt_build import BuildError, build_engine, build_request, plan_builds
    from vispeak_ros.runtime.backends.tensorrt_backend import gpu_info

    try:
        env = detect_environment()
        profile = select_profile(gpu_info(env), load_profiles(), profile_name)
        precision = precision or profile.default_precision
        plans = plan_builds(export_dir, profile, precision, window_segments)
    except (EngineCacheError, ProfileError, BuildError) as error:
        _error(str(error))
        return 2
    l4t = f", L4T {env.l4t_version}" if env.l4t_version else ""
    say(f"TensorRT {trt.__version__}, {env.gpu_name} (sm {env.compute_capability}), CUDA {env.cuda_version}{l4t}; "
        f"profile {profile.name}, {precision}")  # fmt: skip
    request = build_request(plans, checksum, profile)
    cache = cache_for(engine_dir)
    try:
        resolution = cache.resolve(env, request, rebuild=rebuild)
    except EngineCacheError as error:
        _error(str(error))
        return 4
    if resolution.state == "ready" and not force:
        say(f"up to date: {resolution.folder} (--force builds again)")
        return _gate(resolution.folder, export_dir, checkpoint, precision, window_segments, cache, gate_options, say)
    for reason in resolution.reasons:
        say(f"  rebuilding because {reason}")
    cache.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=cache.root))
    started = time.perf_counter()
    try:
        built = {}
        for plan in plans:
            shapes = "; ".join(f"{name}: " + ", ".join(f"{k} {v[0]}..{v[2]}" for k, v in s.items() if k[:4] != "past")
                               for name, s in plan.profiles)  # fmt: skip
            say(f"building {plan.graph} ({plan.precision}{', ' + shapes if shapes else ''}) from {plan.onnx_path}")
            built[plan.graph] = build_engine(plan, staging / f"{plan.graph}.engine", cache.timing_cache_path(env), say)
        stale = tuple(p for p in resolution.stale if p != resolution.folder)
        folder = cache.write(env, request, built, extra={"profile": profile.name}, replace=stale)
    except BuildError as error:
        _error(str(error))
        return 2
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say(f"engines in {folder} ({time.perf_counter() - started:.0f} s); replaced {len(stale)} stale set(s)")
    return _gate(folder, export_dir, checkpoint, precision, window_segments, cache, gate_options, say)


def _gate(folder: Path, export_dir: Path, checkpoint: Path, precision: str, window_segments: int,
          cache: EngineCache, gate_options: dict | None, say: Say) -> int:  # fmt: skip
    """fp32 needs no gate; other precisions are judged once (the verdict stays in the metadata)."""
    if precision == "fp32":
        return 0
    existing = cache.read_metadata(folder).get("gate")
    if existing is not None:
        say(f"gate (recorded): {'accepted' if existing.get('accepted') else 'rejected'}")
        return 0 if existing.get("accepted") else 3
    from vispeak_ros.engines.gate import run_gate, synthetic_streams
    from vispeak_ros.model.tokenizer import load_tokenizer
    from vispeak_ros.runtime.backends.factory import decision_options
    from vispeak_ros.runtime.backends.onnx_backend import OnnxBackend, available_providers
    from vispeak_ros.runtime.backends.tensorrt_backend import TensorRTBackend
    from vispeak_ros.runtime.config import RuntimeConfig

    options = dict(gate_options or {})
    scenarios, seeds = options.pop("scenarios", None), options.pop("seeds", 1)
    config = RuntimeConfig(window_segments=window_segments)
    tokenizer = load_tokenizer(checkpoint)
    provider = "cuda" if "cuda" in available_providers() else "cpu"
    streams = synthetic_streams(scenarios, seeds=seeds)
    say(f"agreement gate: TensorRT {precision} vs onnxruntime-{provider} FP32 on {len(streams)} synthetic streams")
    report = run_gate(
        lambda: OnnxBackend(export_dir, tokenizer, provider=provider, **decision_options(config)),
        lambda: TensorRTBackend(folder, export_dir, tokenizer, **decision_options(config)),
        streams,
        config,
        **options,
    )
    cache.update_metadata(folder, gate=report.as_dict())
    say(f"gate: {report.summary()}")
    return 0 if report.accepted else 3
