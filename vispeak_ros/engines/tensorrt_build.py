"""Build TensorRT engines from an ONNX export, for one device profile and precision (TensorRT 10 Python API).

Two halves:
- `plan_builds` / `build_request` (pure Python, tested here): what is handed to the builder for each graph: the
  ONNX file, its input / output names and dims as the graph declares them, one optimisation profile per streaming
  shape regime (min / opt / max of every dynamic input, from `device_profiles.step_dims`), the precision's builder
  flags, the workspace and optimisation level; and the `BuildRequest` the engine cache keys them by.
- `build_engine` (needs `tensorrt` and a GPU; unverified by us): parse the ONNX file into an explicit-batch network
  (TensorRT 10 networks always are: no creation flag), check the parsed inputs and outputs against the plan, set
  the flags, memory pool limit and optimisation profiles, reuse and extend the on-disk timing cache, report the
  builder's phases (`IProgressMonitor`), and write the serialized engine.

Precisions: fp32 (TF32 off), fp16 and bf16 (builder flags over the float32 graph: inputs and outputs stay float32)
and the weight-only / FP8 precisions int8, int4 and fp8, which need explicit quantization: a Q/DQ copy of the LLM
step graph made with nvidia-modelopt and placed in the export folder as `llm_step.<precision>.qdq.onnx`
(`qdq_instructions` says how). The vision and audio graphs are built in fp16 then (fp32 where the profile has no
fp16). The onnxruntime INT8 variant (`llm_step.int8.onnx`, dynamic quantization with integer MatMuls) is not a
TensorRT input.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vispeak_ros.engines.device_profiles import (
    PRECISION_FLAGS,
    QDQ_PRECISIONS,
    DeviceProfile,
    DimRange,
    ProfileError,
    step_dims,
)
from vispeak_ros.engines.engine_cache import BuildRequest
from vispeak_ros.runtime.backends.artifacts import ArtifactError, file_sha256, read_manifest
from vispeak_ros.runtime.backends.session_backend import AUDIO_ROWS

BUILDER_VERSION = 1  # bump when what the builder does to a network changes (it is part of every key)
ENCODER_GRAPHS = ("vision", "audio")
STEP_PROFILES = ("segment", "decode")  # optimisation profile order in the step engine (index 0, 1)


class BuildError(RuntimeError):
    """The engines cannot be built as asked; the message says what and where."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dims: tuple[int | str, ...]  # an int is fixed, a string is the ONNX graph's named dynamic axis
    dtype: str  # numpy name: "float32", "int64", ...


@dataclass(frozen=True)
class BuilderInputs:
    """Everything handed to the TensorRT builder for one graph."""

    graph: str
    onnx_path: Path
    onnx_sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    #: (profile name, {input name: (min shape, opt shape, max shape)}) in the order they are added
    profiles: tuple[tuple[str, dict[str, tuple[tuple[int, ...], ...]]], ...]
    precision: str
    flags: tuple[str, ...]
    workspace_bytes: int
    optimization_level: int

    def shapes_json(self) -> dict[str, Any]:
        return {name: {k: [list(s) for s in v] for k, v in shapes.items()} for name, shapes in self.profiles}

    def flags_json(self) -> dict[str, Any]:
        return {
            "flags": list(self.flags),
            "tf32": self.precision != "fp32",
            "workspace_mb": self.workspace_bytes >> 20,
            "optimization_level": self.optimization_level,
            "builder_version": BUILDER_VERSION,
        }


def graph_io(path: str | Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The graph's declared inputs and outputs (names, dims, dtypes), without loading external weights."""
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    model = onnx.load(str(path), load_external_data=False)

    def spec(value) -> TensorSpec:
        tensor = value.type.tensor_type
        dims = tuple(d.dim_param if d.dim_param else int(d.dim_value) for d in tensor.shape.dim)
        return TensorSpec(value.name, dims, tensor_dtype_to_np_dtype(tensor.elem_type).name)

    initializers = {t.name for t in model.graph.initializer}
    inputs = tuple(spec(v) for v in model.graph.input if v.name not in initializers)
    return inputs, tuple(spec(v) for v in model.graph.output)


def profile_shapes(
    graph: str, inputs: tuple[TensorSpec, ...], dims: dict[str, DimRange]
) -> dict[str, tuple[tuple[int, ...], ...]]:
    """(min, opt, max) shapes of every input with a dynamic axis, each axis from `dims` by its ONNX name."""
    shapes = {}
    for spec in inputs:
        if all(isinstance(d, int) for d in spec.dims):
            continue
        triple = []
        for pick in ("min", "opt", "max"):
            shape = []
            for d in spec.dims:
                if isinstance(d, int):
                    shape.append(d)
                elif d in dims:
                    shape.append(getattr(dims[d], pick))
                else:
                    raise BuildError(f"{graph}: input {spec.name} has dynamic axis {d!r} with no range in the plan")
            triple.append(tuple(shape))
        shapes[spec.name] = tuple(triple)
    return shapes


def qdq_file(precision: str) -> str:
    return f"llm_step.{precision}.qdq.onnx"


def qdq_instructions(export_dir: Path, precision: str) -> str:
    """How to make the Q/DQ step graph this builder does not make (nvidia-modelopt's ONNX PTQ; unverified by us)."""
    mode = {"int8": "int8", "int4": "int4", "fp8": "fp8"}[precision]
    target = export_dir / qdq_file(precision)
    return (
        f"precision {precision} needs an explicitly quantized (Q/DQ) LLM step graph at {target}, which this builder "
        f'does not make; with nvidia-modelopt (pip install nvidia-modelopt[onnx]): python -c "import numpy as np; '
        f"from modelopt.onnx.quantization import quantize; quantize('{export_dir / 'llm_step.onnx'}', "
        f"quantize_mode='{mode}', calibration_data=dict(np.load('calib.npz')), use_external_data_format=True, "
        f"output_path='{target}')\" where calib.npz holds step inputs (by input name) recorded from real streams "
        f"(unverified by us)"
    )


def graph_sha256(folder: Path, name: str, recorded: dict[str, str]) -> str:
    """The graph's identity: its sha256 and that of its external data file, from the manifest when recorded."""
    parts = []
    for file in (name, name + ".data"):
        path = folder / file
        if file in recorded:
            parts.append(recorded[file])
        elif path.is_file():
            parts.append(file_sha256(path))
        elif file == name:
            raise BuildError(f"{path}: graph file missing")
    return parts[0] if len(parts) == 1 else json.dumps(parts)


def segment_rows(manifest: dict[str, Any]) -> tuple[int, int]:
    """(frame block rows, audio block rows) of this export: tokens + the seg row, 0 without the encoder."""
    graphs = manifest["graphs"]
    frame = graphs["vision"]["frame_tokens"] + 1 if "vision" in graphs else 0
    return frame, AUDIO_ROWS if "audio" in graphs else 0


def plan_builds(
    export_dir: str | Path, profile: DeviceProfile, precision: str, window_segments: int
) -> list[BuilderInputs]:
    """What the builder gets for each graph of the export (encoders first, the LLM step last)."""
    export_dir = Path(export_dir)
    try:
        manifest = read_manifest(export_dir)
    except ArtifactError as error:
        raise BuildError(str(error)) from None
    if precision not in profile.precisions:
        raise BuildError(
            f"precision {precision} is not available on device profile {profile.name} "
            f"(it has {', '.join(profile.precisions)})"
        )
    recorded = manifest.get("files", {})
    workspace = profile.workspace_mb << 20
    plans = []
    encoder_precision = precision
    if precision in QDQ_PRECISIONS:
        encoder_precision = "fp16" if "fp16" in profile.precisions else "fp32"
    for name in ENCODER_GRAPHS:
        if name not in manifest["graphs"]:
            continue
        file = manifest["graphs"][name]["file"]
        inputs, outputs = graph_io(export_dir / file)
        dynamic = [s.name for s in inputs if not all(isinstance(d, int) for d in s.dims)]
        if dynamic:
            raise BuildError(f"{export_dir / file}: the {name} graph must have static shapes, {dynamic} are dynamic")
        plans.append(BuilderInputs(name, export_dir / file, graph_sha256(export_dir, file, recorded), inputs, outputs,
                                   (), encoder_precision, PRECISION_FLAGS[encoder_precision], workspace,
                                   profile.builder_optimization_level))  # fmt: skip
    step_file = manifest["graphs"]["llm_step"]["file"]
    inputs, outputs = graph_io(export_dir / step_file)
    if precision in QDQ_PRECISIONS:
        step_file = qdq_file(precision)
        if not (export_dir / step_file).is_file():
            raise BuildError(qdq_instructions(export_dir, precision))
        q_inputs, q_outputs = graph_io(export_dir / step_file)
        if [s.name for s in q_inputs] != [s.name for s in inputs] or [s.name for s in q_outputs] != [
            s.name for s in outputs
        ]:
            raise BuildError(f"{export_dir / step_file}: inputs/outputs differ from {manifest['graphs']['llm_step']}")
        inputs, outputs = q_inputs, q_outputs
    frame_rows, audio_rows = segment_rows(manifest)
    try:
        ranges = step_dims(profile, window_segments, frame_rows, audio_rows)
    except ProfileError as error:
        raise BuildError(str(error)) from None
    profiles = tuple((name, profile_shapes("llm_step", inputs, ranges[name])) for name in STEP_PROFILES)
    plans.append(
        BuilderInputs(
            "llm_step",
            export_dir / step_file,
            graph_sha256(export_dir, step_file, recorded),
            inputs,
            outputs,
            profiles,
            precision,
            PRECISION_FLAGS[precision],
            workspace,
            profile.builder_optimization_level,
        )
    )
    return plans


def build_request(plans: list[BuilderInputs], model_checksum: str, profile: DeviceProfile) -> BuildRequest:
    step = next(p for p in plans if p.graph == "llm_step")
    return BuildRequest(
        model_checksum=model_checksum,
        graphs={p.graph: p.onnx_sha256 for p in plans},
        precision=step.precision,
        device_profile=profile.name,
        profile_shapes={p.graph: p.shapes_json() for p in plans},
        build_flags={p.graph: p.flags_json() for p in plans},
    )


# --------------------------------------------------------------------- TensorRT (needs the package and a GPU)
def _progress_monitor(trt, say: Callable[[str], None]):
    """An `IProgressMonitor` printing each builder phase (nested by its parent) and its progress in tenths."""
    import threading

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.lock = threading.Lock()
            self.phases: dict[str, tuple[int, int, float, int]] = {}  # name -> depth, steps, start, last tenth

        def phase_start(self, phase_name, parent_phase, num_steps):
            with self.lock:
                depth = self.phases[parent_phase][0] + 1 if parent_phase in self.phases else 0
                self.phases[phase_name] = (depth, max(int(num_steps), 1), time.perf_counter(), 0)
                if depth <= 1:
                    say(f"  {'  ' * depth}{phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name, step):
            with self.lock:
                depth, steps, start, last = self.phases.get(phase_name, (0, 1, time.perf_counter(), 0))
                tenth = (int(step) + 1) * 10 // steps
                if depth == 0 and tenth > last:
                    say(f"    {phase_name}: {tenth * 10}% ({time.perf_counter() - start:.0f} s)")
                self.phases[phase_name] = (depth, steps, start, max(last, tenth))
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            with self.lock:
                depth, _, start, _ = self.phases.pop(phase_name, (0, 1, time.perf_counter(), 0))
                if depth <= 1:
                    say(f"  {'  ' * depth}{phase_name} done in {time.perf_counter() - start:.1f} s")

    return Monitor()


def _check_network(trt, network, plan: BuilderInputs) -> None:
    """The parsed network must declare exactly the planned inputs and outputs (names, order, fixed dims)."""
    parsed_in = [network.get_input(i) for i in range(network.num_inputs)]
    parsed_out = [network.get_output(i) for i in range(network.num_outputs)]
    if [t.name for t in parsed_in] != [s.name for s in plan.inputs]:
        raise BuildError(f"{plan.onnx_path}: TensorRT parsed inputs {[t.name for t in parsed_in]}, "
                         f"planned {[s.name for s in plan.inputs]}")  # fmt: skip
    if [t.name for t in parsed_out] != [s.name for s in plan.outputs]:
        raise BuildError(f"{plan.onnx_path}: TensorRT parsed outputs {[t.name for t in parsed_out]}, "
                         f"planned {[s.name for s in plan.outputs]}")  # fmt: skip
    for tensor, spec in zip(parsed_in, plan.inputs, strict=True):
        fixed = [d if isinstance(d, int) else -1 for d in spec.dims]
        if list(tensor.shape) != fixed:
            raise BuildError(f"{plan.onnx_path}: input {spec.name} parsed as {list(tensor.shape)}, planned {fixed}")


def build_engine(plan: BuilderInputs, target: Path, timing_cache: Path, say: Callable[[str], None] = print) -> Path:
    """Build one engine into `target`, reusing and then updating the timing cache file."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch always; weakly typed (precision flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(plan.onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BuildError(f"{plan.onnx_path}: TensorRT's ONNX parser failed: {errors}")
    _check_network(trt, network, plan)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_bytes)
    config.builder_optimization_level = plan.optimization_level
    if plan.precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)  # the reference precision: no reduced-mantissa matmuls
    for flag in plan.flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    for name, shapes in plan.profiles:
        profile = builder.create_optimization_profile()
        for tensor, (low, opt, high) in shapes.items():
            profile.set_shape(tensor, low, opt, high)
        if config.add_optimization_profile(profile) < 0:  # -1: TensorRT found the profile inconsistent
            raise BuildError(f"{plan.graph}: optimisation profile {name} is not valid: {shapes}")
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    if cache is None:  # an unreadable (truncated, foreign) cache file: start a new one rather than fail the build
        say(f"  timing cache {timing_cache} is not usable; starting an empty one")
        cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    monitor = _progress_monitor(trt, say)
    config.progress_monitor = monitor
    started = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildError(f"{plan.graph}: TensorRT could not build the engine (see the TensorRT log above)")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(memoryview(serialized))
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    partial = timing_cache.with_name(timing_cache.name + ".tmp")
    partial.write_bytes(memoryview(config.get_timing_cache().serialize()))
    partial.replace(timing_cache)
    say(f"  {plan.graph}: {target.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - started:.0f} s")
    return target
