"""`vispeak-build-engine`: build the model artifacts the fast backends run, offline, never at node start.

    vispeak-build-engine --format onnx [--checkpoint DIR] [--output DIR | --engine-dir ROOT] [--int8] [--force]

`--format onnx` exports the vision, audio and LLM-step graphs (checked with `onnx.checker` and against the torch
model on a few random rows), the embedding table and a manifest into `--output` (default
`<engine-dir or $XDG_CACHE_HOME/vispeak_ros/engines>/onnx/<checkpoint checksum[:16]>`, where `backend: onnxruntime`
and `backend: auto` look). An up-to-date export is left alone unless `--force`. `--int8` adds a dynamically
quantized LLM step and runs the agreement gate against FP32 on held-out synthetic streams; the verdict is stored in
the manifest and the runtime loads the INT8 graph (`engine_precision: int8`) only when it was accepted.
Exit status: 0 done, 2 bad arguments or input, 3 the INT8 variant was rejected by the gate.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

FORMATS = ("onnx", "tensorrt")


def _unit(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vispeak-build-engine", description="Export / build ViSpeak inference engines.")
    p.add_argument("--format", choices=FORMATS, required=True, help="onnx (onnxruntime; input of TensorRT)")
    p.add_argument("--checkpoint", type=Path, help="checkpoint folder (default: the bundled demo checkpoint)")
    p.add_argument("--vision-tower", type=Path, help="InternViT folder, when the checkpoint's config cannot find it")
    p.add_argument("--audio-encoder", type=Path, help="VITA audio-encoder folder (train.yaml, global_cmvn)")
    p.add_argument("--output", type=Path, help="export folder (default: under --engine-dir, by model checksum)")
    p.add_argument("--engine-dir", type=Path, help="cache root (default $XDG_CACHE_HOME/vispeak_ros/engines)")
    p.add_argument("--force", action="store_true", help="export again even when an up-to-date export exists")
    p.add_argument("--int8", action="store_true", help="add a dynamic INT8 LLM step, judged by the agreement gate")
    p.add_argument("--gate-seeds", type=int, default=1, help="held-out streams per scenario for the gate (1)")
    p.add_argument("--gate-scenarios", help="comma-separated world scenarios for the gate (default: all)")
    p.add_argument("--min-trigger-agreement", type=_unit, default=None, help="gate rate for triggers (0.98)")
    p.add_argument("--min-event-agreement", type=_unit, default=None, help="gate rate for event types (0.95)")
    return p


def _say(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.format == "tensorrt":
        print("vispeak-build-engine: error: --format tensorrt is not part of this build yet", file=sys.stderr)
        return 2
    if args.gate_seeds < 1:
        print("vispeak-build-engine: error: --gate-seeds must be >= 1", file=sys.stderr)
        return 2
    if args.gate_scenarios:
        from vispeak_ros.training.world import SCENARIOS

        args.gate_scenarios = [s.strip() for s in args.gate_scenarios.split(",") if s.strip()]
        unknown = [s for s in args.gate_scenarios if s not in SCENARIOS]
        if unknown:
            print(f"vispeak-build-engine: error: --gate-scenarios: unknown {unknown}; known: {', '.join(SCENARIOS)}",
                  file=sys.stderr)  # fmt: skip
            return 2
    from vispeak_ros.runtime.backends.artifacts import ArtifactError, default_onnx_dir, model_checksum, read_manifest

    checkpoint = args.checkpoint
    if checkpoint is None:
        from vispeak_ros.data import demo_checkpoint

        checkpoint = Path(demo_checkpoint())
    try:
        checksum = model_checksum(checkpoint)
    except ArtifactError as error:
        print(f"vispeak-build-engine: error: {error}", file=sys.stderr)
        return 2
    out = args.output or default_onnx_dir(checksum, args.engine_dir)
    if out.exists() and not out.is_dir():
        print(f"vispeak-build-engine: error: --output {out} is a file, not a folder", file=sys.stderr)
        return 2
    try:
        current = read_manifest(out).get("model_checksum") == checksum
    except ArtifactError:
        current = False
    if current and not args.force:
        _say(f"up to date: {out} (checksum {checksum[:16]}); --force exports again")
    else:
        status = _export(checkpoint, out, checksum, args)
        if status:
            return status
    if args.int8:
        return _int8(checkpoint, out, args)
    return 0


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
