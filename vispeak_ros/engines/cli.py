"""`vispeak-build-engine`: build the model artifacts the fast backends run, offline, never at node start.

    vispeak-build-engine --format onnx [--checkpoint DIR] [--output DIR | --engine-dir ROOT] [--int8] [--force]
    vispeak-build-engine --format tensorrt [--checkpoint DIR] [--engine-dir ROOT] [--profile NAME]
                         [--precision P] [--window-segments N] [--no-rebuild] [--force]
    vispeak-build-engine --list [--engine-dir ROOT]
    vispeak-build-engine --clear [--checkpoint DIR] [--engine-dir ROOT]

`--format onnx` exports the vision, audio and LLM-step graphs (checked with `onnx.checker` and against the torch
model on a few random rows), the embedding table and a manifest into `--output` (default
`<engine-dir or $XDG_CACHE_HOME/vispeak_ros/engines>/onnx/<checkpoint checksum[:16]>`, where `backend: onnxruntime`
and `backend: auto` look). An up-to-date export is left alone unless `--force`. `--int8` adds a dynamically
quantized LLM step and runs the agreement gate against FP32 on held-out synthetic streams; the verdict is stored in
the manifest and the runtime loads the INT8 graph (`engine_precision: int8`) only when it was accepted.

`--format tensorrt` exports first when this checkpoint has no export, then builds TensorRT engines from it for this
GPU into `<engine-dir>/tensorrt/` (see `tensorrt_cli`); engines already cached for exactly this request are left
alone, so it can run before every launch (with `--no-rebuild` it only checks). `--list` and `--clear` work on that
cache and need no TensorRT. An unchanged checkpoint is recognised by its file stats (names, sizes, mtimes) recorded
in the export's manifest, so none of these hashes a 15 GB checkpoint again.
Exit status: 0 done, 2 bad arguments or input (or no TensorRT / GPU), 3 rejected by the agreement gate, 4 an
export or engine is missing or stale and `--no-rebuild` forbids building it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

FORMATS = ("onnx", "tensorrt")
#: options each action accepts besides its own flag (anything else given is refused, not silently ignored)
_ONNX = {"checkpoint", "vision_tower", "audio_encoder", "output", "engine_dir", "force", "int8", "gate_seeds",
         "gate_scenarios", "min_trigger_agreement", "min_event_agreement"}  # fmt: skip
_TENSORRT = (_ONNX - {"int8"}) | {"profile", "precision", "window_segments", "no_rebuild"}
_ALLOWED = {"onnx": _ONNX, "tensorrt": _TENSORRT, "list": {"engine_dir"}, "clear": {"engine_dir", "checkpoint"}}


def _unit(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    from vispeak_ros.engines.device_profiles import PRECISIONS

    p = argparse.ArgumentParser(prog="vispeak-build-engine", description="Export / build ViSpeak inference engines.")
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--format", choices=FORMATS, help="onnx: export the graphs (onnxruntime); tensorrt: export "
                        "when needed, then build TensorRT engines for this GPU")  # fmt: skip
    action.add_argument("--list", action="store_true", help="list the cached TensorRT engines (no TensorRT needed)")
    action.add_argument("--clear", action="store_true", help="remove cached TensorRT engines: all, or --checkpoint's")
    p.add_argument("--checkpoint", type=Path, help="checkpoint folder (default: the bundled demo checkpoint)")
    p.add_argument("--vision-tower", type=Path, help="InternViT folder, when the checkpoint's config cannot find it")
    p.add_argument("--audio-encoder", type=Path, help="VITA audio-encoder folder (train.yaml, global_cmvn)")
    p.add_argument("--output", type=Path, help="export folder (default: under --engine-dir, by model checksum)")
    p.add_argument("--engine-dir", type=Path, help="cache root (default $XDG_CACHE_HOME/vispeak_ros/engines)")
    p.add_argument("--force", action="store_true", help="export / build again even when up to date")
    p.add_argument("--int8", action="store_true", help="onnx: add a dynamic INT8 LLM step, judged by the gate")
    p.add_argument("--gate-seeds", type=int, default=1, help="held-out streams per scenario for the gate (1)")
    p.add_argument("--gate-scenarios", help="comma-separated world scenarios for the gate (default: all)")
    p.add_argument("--min-trigger-agreement", type=_unit, default=None, help="gate rate for triggers (0.98)")
    p.add_argument("--min-event-agreement", type=_unit, default=None, help="gate rate for event types (0.95)")
    trt = p.add_argument_group("TensorRT (--format tensorrt)")
    trt.add_argument("--profile", help="device profile of engine/profiles (default: the one matching this GPU)")
    trt.add_argument("--precision", choices=PRECISIONS, help="engine precision (default: the profile's; int8, fp8 "
                     "and int4 need a Q/DQ graph from nvidia-modelopt, see the README)")  # fmt: skip
    trt.add_argument("--window-segments", type=int, default=None,
                     help="the node's window_segments (default 60): it sets the engines' shapes")  # fmt: skip
    trt.add_argument("--no-rebuild", action="store_true", help="only check: a missing or stale engine exits 4")
    return p


def _say(line: str) -> None:
    print(line, flush=True)


def _error(message: str) -> None:
    print(f"vispeak-build-engine: error: {message}", file=sys.stderr)


def _check_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The first option given that the chosen action does not use, as an error message."""
    action = args.format or ("list" if args.list else "clear")
    for name, value in vars(args).items():
        if name in {"format", "list", "clear"} or name in _ALLOWED[action] or value == p.get_default(name):
            continue
        flag = "--" + name.replace("_", "-")
        hint = "; use --precision int8" if name == "int8" else ""
        return f"{flag} does not apply to {'--format ' + action if args.format else '--' + action}{hint}"
    if args.gate_seeds < 1:
        return "--gate-seeds must be >= 1"
    if args.window_segments is not None and not 1 <= args.window_segments <= 3600:
        return f"--window-segments must be in [1, 3600], got {args.window_segments}"
    return None


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    problem = _check_options(p, args)
    if problem:
        _error(problem)
        return 2
    if args.list:
        from vispeak_ros.engines.tensorrt_cli import list_engines

        return list_engines(args.engine_dir, _say)
    if args.gate_scenarios:
        from vispeak_ros.training.world import SCENARIOS

        args.gate_scenarios = [s.strip() for s in args.gate_scenarios.split(",") if s.strip()]
        unknown = [s for s in args.gate_scenarios if s not in SCENARIOS]
        if unknown:
            _error(f"--gate-scenarios: unknown {unknown}; known: {', '.join(SCENARIOS)}")
            return 2
    if args.format == "tensorrt":
        from vispeak_ros.engines.tensorrt_cli import tensorrt_missing

        missing = tensorrt_missing()  # before any export: without TensorRT the export would be wasted
        if missing:
            _error(missing)
            return 2
    from vispeak_ros.runtime.backends.artifacts import ArtifactError

    if args.clear and args.checkpoint is None:
        from vispeak_ros.engines.tensorrt_cli import clear_engines

        return clear_engines(args.engine_dir, None, _say)
    checkpoint = args.checkpoint
    if checkpoint is None:
        from vispeak_ros.data import demo_checkpoint

        checkpoint = Path(demo_checkpoint())
    if args.output is not None and args.output.exists() and not args.output.is_dir():
        _error(f"--output {args.output} is a file, not a folder")
        return 2
    try:
        checksum, out, current = locate_export(checkpoint, args.output, args.engine_dir)
    except ArtifactError as error:
        _error(str(error))
        return 2
    if args.clear:
        from vispeak_ros.engines.tensorrt_cli import clear_engines

        return clear_engines(args.engine_dir, checksum, _say)
    if current and not (args.force and args.format == "onnx"):  # tensorrt: --force builds the engines again
        again = "; --force exports again" if args.format == "onnx" else ""
        _say(f"up to date: {out} (checksum {checksum[:16]}){again}")
    elif args.no_rebuild:
        _error(f"no up-to-date ONNX export of {checkpoint} at {out}; rebuilding is off (drop --no-rebuild)")
        return 4
    else:
        status = _export(checkpoint, out, checksum, args)
        if status:
            return status
    if args.format == "tensorrt":
        return _tensorrt(checkpoint, out, checksum, args)
    if args.int8:
        return _int8(checkpoint, out, args)
    return 0


def locate_export(checkpoint: Path, output: Path | None, engine_dir: Path | None) -> tuple[str, Path, bool]:
    """(model checksum, export folder, whether it holds an export of this checkpoint).

    An export whose manifest recorded exactly this checkpoint's file stats is taken without hashing; otherwise the
    checkpoint is hashed (the first time, or after it changed) and the export folder follows from the checksum."""
    from vispeak_ros.runtime.backends.artifacts import (
        ArtifactError,
        cache_root,
        checkpoint_stats,
        default_onnx_dir,
        model_checksum,
        read_manifest,
    )

    if not checkpoint.is_dir():
        raise ArtifactError(f"checkpoint folder not found: {checkpoint}")
    stats = checkpoint_stats(checkpoint)
    root = Path(engine_dir) if engine_dir else cache_root()
    candidates = [output] if output is not None else sorted(p.parent for p in (root / "onnx").glob("*/manifest.json"))
    for folder in candidates:
        try:
            manifest = read_manifest(folder)
        except ArtifactError:
            continue
        if stats and manifest.get("checkpoint_files") == stats and manifest.get("model_checksum"):
            return manifest["model_checksum"], folder, True
    checksum = model_checksum(checkpoint)
    out = output if output is not None else default_onnx_dir(checksum, engine_dir)
    try:
        current = read_manifest(out).get("model_checksum") == checksum
    except ArtifactError:
        current = False
    return checksum, out, current


def _gate_options(args) -> dict:
    options: dict = {"scenarios": args.gate_scenarios or None, "seeds": args.gate_seeds}
    for key in ("min_trigger_agreement", "min_event_agreement"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    return options


def _tensorrt(checkpoint: Path, export: Path, checksum: str, args) -> int:
    from vispeak_ros.engines.tensorrt_cli import build_tensorrt
    from vispeak_ros.runtime.config import RuntimeConfig

    return build_tensorrt(
        export,
        checkpoint,
        checksum,
        engine_dir=args.engine_dir,
        profile_name=args.profile,
        precision=args.precision,
        window_segments=args.window_segments or RuntimeConfig().window_segments,
        rebuild=not args.no_rebuild,
        force=args.force,
        gate_options=_gate_options(args),
        say=_say,
    )


def _export(checkpoint: Path, out: Path, checksum: str, args) -> int:
    from vispeak_ros.engines.export import export_onnx
    from vispeak_ros.engines.verify import compare_with_torch
    from vispeak_ros.model import load_checkpoint
    from vispeak_ros.model.errors import CheckpointError
    from vispeak_ros.runtime.backends.artifacts import checkpoint_stats

    started = time.perf_counter()
    _say(f"loading {checkpoint}")
    try:
        model = load_checkpoint(checkpoint, vision_tower=args.vision_tower, audio_encoder=args.audio_encoder)
    except (CheckpointError, OSError, ValueError) as error:
        print(f"vispeak-build-engine: error: {error}", file=sys.stderr)
        return 2
    _say(f"exporting to {out}")
    manifest = export_onnx(model, out, checksum=checksum, checkpoint_files=checkpoint_stats(checkpoint))
    for name, graph in manifest["graphs"].items():
        size = (out / graph["file"]).stat().st_size
        _say(f"  {name:9s} {graph['file']:16s} {size / 1e6:8.2f} MB  onnx.checker ok")
    diffs = compare_with_torch(model, out)
    _say("  onnxruntime CPU vs torch, max abs diff: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
    _say(f"exported in {time.perf_counter() - started:.1f} s")
    return 0


def _int8(checkpoint: Path, out: Path, args) -> int:
    from vispeak_ros.engines.gate import run_gate, synthetic_streams
    from vispeak_ros.engines.variants import quantize_int8
    from vispeak_ros.model.tokenizer import load_tokenizer
    from vispeak_ros.runtime.backends.artifacts import read_manifest, write_manifest
    from vispeak_ros.runtime.backends.factory import decision_options
    from vispeak_ros.runtime.backends.onnx_backend import OnnxBackend
    from vispeak_ros.runtime.config import RuntimeConfig

    started = time.perf_counter()
    manifest = read_manifest(out)
    target = out / "llm_step.int8.onnx"
    quantize_int8(out / manifest["graphs"]["llm_step"]["file"], target)
    _say(f"quantized: {target.name} ({target.stat().st_size / 1e6:.2f} MB, dynamic INT8 MatMul weights)")
    config = RuntimeConfig()
    tokenizer = load_tokenizer(checkpoint)

    def backend(step_file: str | None = None):
        return lambda: OnnxBackend(out, tokenizer, step_file=step_file, verify_files=False, **decision_options(config))

    streams = synthetic_streams(args.gate_scenarios or None, seeds=args.gate_seeds)
    _say(f"agreement gate on {len(streams)} held-out synthetic streams ({sum(len(s) for _, s in streams)} s)")
    thresholds = {
        key: value
        for key, value in (
            ("min_trigger_agreement", args.min_trigger_agreement),
            ("min_event_agreement", args.min_event_agreement),
        )
        if value is not None
    }
    report = run_gate(backend(), backend(target.name), streams, config, **thresholds)
    manifest["variants"]["int8"] = {"file": target.name, "gate": report.as_dict()}
    write_manifest(out, manifest)
    _say(f"gate: {report.summary()} ({time.perf_counter() - started:.1f} s)")
    return 0 if report.accepted else 3


if __name__ == "__main__":
    raise SystemExit(main())
