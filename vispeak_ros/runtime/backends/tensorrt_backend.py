"""The TensorRT backend: engines from the engine cache behind the runtime's `Backend` interface (unverified by us:
`tensorrt` cannot be installed on the machines this was written on; see the README's list).

Model execution only; decisions are the shared `SessionBackend` / `StreamingSession`, exactly as for torch and
onnxruntime. Everything stays on the GPU: the embedding table, block rows, the KV cache (`GpuKVCache`: per-layer
torch CUDA tensors, grown by concatenation and evicted with the same key re-rotation as the torch cache) and every
engine input and output (torch CUDA tensors whose `data_ptr()` are the engine's tensor addresses, run with
`execute_async_v3` on a stream of each engine's own, ordered with torch's current stream by stream waits, without
host synchronisation; on the legacy default stream TensorRT would add synchronisations). Only
the informative probability and the argmax reach the host. The step engine has two optimisation profiles, one
execution context each: "segment" (blocks) and "decode" (one row).

Loading never builds: `create_backend` computes the same cache key the builder did (this GPU, TensorRT, CUDA,
L4T, model checksum, graphs, precision, device profile, shapes of the configured window, flags) and loads that
folder, or refuses with what differs from the engines cached for this model (`vispeak-build-engine --format
tensorrt` builds them, before the node starts). Precisions other than fp32 load only when their agreement gate,
run by the builder against the onnxruntime FP32 export, accepted them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from vispeak_ros.model.cache import rerotate_keys
from vispeak_ros.model.config import FbankConfig
from vispeak_ros.model.fusion import FusionOrder
from vispeak_ros.model.processors import audio_chunk_features, preprocess_image
from vispeak_ros.runtime.backends.artifacts import ArtifactError, cache_root, read_manifest
from vispeak_ros.runtime.backends.session_backend import AUDIO_ROWS, SessionBackend

#: config `engine_precision` values with a TensorRT engine kind (the names are the builder's precisions)
CONFIG_PRECISIONS = ("fp32", "fp16", "bf16", "int8", "fp8", "int4")


def _torch_dtype(trt, dtype) -> torch.dtype:
    kinds = trt.DataType
    table = {
        kinds.FLOAT: torch.float32,
        kinds.HALF: torch.float16,
        kinds.BF16: torch.bfloat16,
        kinds.INT32: torch.int32,
        kinds.INT64: torch.int64,
        kinds.INT8: torch.int8,
        kinds.BOOL: torch.bool,
    }
    if dtype not in table:
        raise ArtifactError(f"engine tensor type {dtype} has no torch equivalent here")
    return table[dtype]


class TrtEngine:
    """One deserialized engine with one execution context per optimisation profile."""

    def __init__(self, runtime, path: Path, device: torch.device) -> None:
        import tensorrt as trt

        self.path, self.device = path, device
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise ArtifactError(f"{path}: TensorRT could not deserialize this engine (another TensorRT version?)")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {n: _torch_dtype(trt, self.engine.get_tensor_dtype(n)) for n in names}
        # A stream of our own: on the legacy default stream (torch's default) TensorRT adds synchronisations.
        self.stream = torch.cuda.Stream(device)
        self.contexts = []
        for index in range(self.engine.num_optimization_profiles):
            context = self.engine.create_execution_context()
            if index:
                context.set_optimization_profile_async(index, self.stream.cuda_stream)
            self.contexts.append(context)
        self._scratch = torch.zeros(16, device=device)  # an address for empty (zero-row) tensors

    def profile_range(self, name: str, profile: int) -> tuple[tuple[int, ...], ...]:
        """(min, opt, max) shapes of input `name` in optimisation profile `profile`."""
        return tuple(tuple(s) for s in self.engine.get_tensor_profile_shape(name, profile))

    def run(self, feeds: dict[str, torch.Tensor], profile: int = 0) -> dict[str, torch.Tensor]:
        """Run on `self.stream`, ordered after the caller's pending torch work and before its next (events, no host
        synchronisation); inputs and outputs stay torch CUDA tensors."""
        context = self.contexts[profile]
        caller = torch.cuda.current_stream(self.device)
        used = []  # every tensor TensorRT reads or writes: kept from reuse until self.stream has run (record_stream)
        for name in self.inputs:
            tensor = feeds[name].to(self.device, self.dtypes[name]).contiguous()
            used.append(tensor)
            if not context.set_input_shape(name, tuple(tensor.shape)):
                raise RuntimeError(f"{self.path.name}: input {name} shape {tuple(tensor.shape)} is outside "
                                   f"optimisation profile {profile} {self.profile_range(name, profile)}")  # fmt: skip
            context.set_tensor_address(name, tensor.data_ptr() if tensor.numel() else self._scratch.data_ptr())
        out = {}
        for name in self.outputs:
            shape = tuple(context.get_tensor_shape(name))
            if any(d < 0 for d in shape):  # the step's outputs follow from input shapes; anything else is a bad engine
                raise RuntimeError(f"{self.path.name}: output {name} has no shape before execution ({shape})")
            tensor = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
            context.set_tensor_address(name, tensor.data_ptr() if tensor.numel() else self._scratch.data_ptr())
            used.append(tensor)
            out[name] = tensor
        self.stream.wait_stream(caller)  # the inputs written on the caller's stream are complete
        if not context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError(f"{self.path.name}: execute_async_v3 failed (see the TensorRT log)")
        for tensor in used:
            tensor.record_stream(self.stream)
        caller.wait_stream(self.stream)  # the caller's later work sees the outputs
        return out


class _Layer:
    __slots__ = ("keys", "values")

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        self.keys, self.values = keys, values


class GpuKVCache:
    """Per-layer keys/values [1, kv_heads, P, head_dim] as CUDA tensors; `drop` = `SinkWindowCache.drop`.

    Appends concatenate into new tensors (as the torch cache does), so a snapshot is the list of references."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, inv_freq: torch.Tensor, device, dtype) -> None:
        empty = torch.zeros(1, kv_heads, 0, head_dim, device=device, dtype=dtype)
        self.layers = [_Layer(empty, empty) for _ in range(layers)]
        self.inv_freq = inv_freq.to(device)

    def get_seq_length(self) -> int:
        return int(self.layers[0].keys.shape[2])

    def append(self, new: Sequence[torch.Tensor]) -> None:
        for i, layer in enumerate(self.layers):
            layer.keys = torch.cat([layer.keys, new[2 * i].to(layer.keys.dtype)], dim=2)
            layer.values = torch.cat([layer.values, new[2 * i + 1].to(layer.values.dtype)], dim=2)

    def drop(self, start: int, count: int) -> None:
        if count <= 0:
            return
        length = self.get_seq_length()
        if start < 0 or start + count > length:
            raise ValueError(f"cannot drop [{start}, {start + count}) from a cache of {length} positions")
        for layer in self.layers:
            tail = rerotate_keys(layer.keys[..., start + count :, :], -count, self.inv_freq)
            layer.keys = torch.cat([layer.keys[..., :start, :], tail], dim=2)
            layer.values = torch.cat([layer.values[..., :start, :], layer.values[..., start + count :, :]], dim=2)


class TrtLLMStep:
    """`model.session.LLMStep` over the step engine and a GPU embedding table."""

    def __init__(self, engine: TrtEngine, manifest: dict[str, Any], table: torch.Tensor, profiles: list[str]) -> None:
        info = manifest["graphs"]["llm_step"]
        self.engine, self.table, self._info = engine, table, info
        self.inputs, self.outputs = info["inputs"], info["outputs"]
        if set(engine.inputs) != set(self.inputs) or set(engine.outputs) != set(self.outputs):
            raise ArtifactError(f"{engine.path}: engine tensors {engine.inputs + engine.outputs} differ from the "
                                f"export's {self.inputs + self.outputs}")  # fmt: skip
        self.decode_profile = profiles.index("decode") if "decode" in profiles else 0
        self.has_informative_head = bool(info["informative_head"])
        self.reset()

    def reset(self) -> None:
        info = self._info
        inv_freq = torch.tensor(info["rope_inv_freq"], dtype=torch.float32)
        dtype = self.engine.dtypes[self.inputs[3]]
        self.cache = GpuKVCache(info["layers"], info["kv_heads"], info["head_dim"], inv_freq, self.table.device, dtype)

    @torch.no_grad()
    def run(
        self, user_embeds: torch.Tensor, agent_ids: list[int], order: FusionOrder, all_logits: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.table.device
        user = user_embeds.to(device, self.table.dtype)
        agent = self.table[torch.tensor(list(agent_ids), device=device)]
        if order == "user_first":  # the fusion is symmetric in its operands' roles: swapping them swaps the order
            user, agent = agent, user
        elif order != "agent_first":
            raise ValueError(f"fusion order {order!r} is not agent_first or user_first")
        start, rows = self.cache.get_seq_length(), int(user.shape[0])
        feeds = {"user_embeds": user, "agent_embeds": agent}
        feeds["position_ids"] = torch.arange(start, start + rows, device=device)
        for i, layer in enumerate(self.cache.layers):
            feeds[self.inputs[3 + 2 * i]] = layer.keys
            feeds[self.inputs[4 + 2 * i]] = layer.values
        out = self.engine.run(feeds, self.decode_profile if rows == 1 else 0)
        self.cache.append([out[name] for name in self.outputs[2:]])
        logits = out["logits"] if all_logits else out["logits"][-1:]
        return out["informative_logits"].float(), logits.float()

    @torch.no_grad()
    def embed(self, ids: list[int]) -> torch.Tensor:
        return self.table[torch.tensor(list(ids), device=self.table.device)]

    def snapshot(self) -> Any:
        return [(layer.keys, layer.values) for layer in self.cache.layers]

    def restore(self, state: Any) -> None:
        for layer, (keys, values) in zip(self.cache.layers, state, strict=True):
            layer.keys, layer.values = keys, values


class TensorRTBackend(SessionBackend):
    """Engines from one cache folder (metadata.json), preprocessing and embeddings from the ONNX export."""

    name = "tensorrt"

    def __init__(
        self,
        engines_dir: str | Path,
        export_dir: str | Path,
        tokenizer,
        *,
        device: str = "cuda",
        threshold: float,
        window_segments: int | None,
        max_answer_tokens: int,
        preempt: bool = True,
        release: float = 1.0,
        audio_questions: bool = False,
    ) -> None:
        import json

        import tensorrt as trt
        from safetensors.torch import load_file

        engines_dir, export_dir = Path(engines_dir), Path(export_dir)
        self.device = torch.device(device)
        meta = json.loads((engines_dir / "metadata.json").read_text(encoding="utf-8"))
        manifest = read_manifest(export_dir)
        self.manifest, self.metadata = manifest, meta
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engines = {name: TrtEngine(self._runtime, engines_dir / info["file"], self.device)
                   for name, info in meta["engines"].items()}  # fmt: skip
        table = load_file(str(export_dir / manifest["embeddings"]))["embed_tokens"]
        self._table = table.to(self.device, torch.float32)
        profiles = list(meta["request"]["profile_shapes"]["llm_step"])
        step = TrtLLMStep(engines["llm_step"], manifest, self._table, profiles)
        self._vision, self._audio = engines.get("vision"), engines.get("audio")
        pre = manifest["preprocess"]
        self._vision_cfg = SimpleNamespace(
            image_size=pre["image_size"], image_mean=pre["image_mean"], image_std=pre["image_std"]
        )
        self._fbank = FbankConfig(**pre["fbank"]) if pre["fbank"] else None
        seg = tokenizer.special_tokens().seg if tokenizer is not None else 0
        self._seg_row = self._table[[seg]]
        graphs = manifest["graphs"]
        super().__init__(
            step,
            tokenizer,
            frame_rows=graphs["vision"]["frame_tokens"] + 1 if "vision" in graphs else 0,
            audio_rows=AUDIO_ROWS if "audio" in graphs else 0,
            threshold=threshold,
            window_segments=window_segments,
            max_answer_tokens=max_answer_tokens,
            preempt=preempt,
            release=release,
            audio_questions=audio_questions,
        )

    @torch.no_grad()
    def frame_block(self, frame: np.ndarray) -> torch.Tensor:
        if self._vision is None:
            raise RuntimeError("these engines have no vision graph")
        pixels = preprocess_image(frame, self._vision_cfg)[None]
        tokens = self._vision.run({"pixel_values": pixels})["frame_tokens"][0]
        return torch.cat([tokens.to(self._table.dtype), self._seg_row])

    @torch.no_grad()
    def audio_block(self, samples: np.ndarray) -> torch.Tensor:
        if self._audio is None:
            raise RuntimeError("these engines have no audio graph")
        fbank, lengths = audio_chunk_features(samples, self._fbank)
        tokens = self._audio.run({"fbank": fbank[:1], "lengths": lengths[:1]})["audio_tokens"][0]
        return torch.cat([tokens.to(self._table.dtype), self._seg_row])


def engine_root(engine_dir: str) -> Path:
    """The TensorRT cache root for the config's `engine_dir`: `<engine_dir>/tensorrt` when it is a cache root,
    the default cache's when it names an export folder (a folder holding manifest.json) or is empty."""
    given = Path(engine_dir) if engine_dir else None
    if given is None or (given / "manifest.json").is_file():
        return cache_root() / "tensorrt"
    return given / "tensorrt"


def create_backend(config, checkpoint: Path):
    """The factory's entry point: the cached engines for this checkpoint, GPU and configuration, or
    `BackendUnavailable` with the reason (never a build)."""
    from vispeak_ros.runtime.backends.factory import BackendUnavailable, decision_options

    try:
        import tensorrt
    except ImportError as error:
        raise BackendUnavailable(f"tensorrt not installed ({error.name})") from None
    from vispeak_ros.engines.engine_cache import tensorrt_version_problem

    problem = tensorrt_version_problem(str(tensorrt.__version__))
    if problem:
        raise BackendUnavailable(problem)
    if not torch.cuda.is_available():
        raise BackendUnavailable("no CUDA device visible to torch")
    precision = config.engine_precision
    if precision not in CONFIG_PRECISIONS:
        raise BackendUnavailable(f"engine_precision {precision} has no TensorRT engine kind here")
    from vispeak_ros.engines.device_profiles import ProfileError, load_profiles
    from vispeak_ros.engines.engine_cache import EngineCache, EngineCacheError, detect_environment
    from vispeak_ros.engines.tensorrt_build import BuildError, build_request, plan_builds
    from vispeak_ros.model.tokenizer import load_tokenizer
    from vispeak_ros.runtime.backends.artifacts import find_onnx_export

    device = config.device if config.device.startswith("cuda") else "cuda"
    try:
        export = find_onnx_export(checkpoint, config.engine_dir or None)
        checksum = read_manifest(export)["model_checksum"]  # find_onnx_export checked it against the checkpoint
        env = detect_environment()
        cache = EngineCache(engine_root(config.engine_dir))
        folder = None
        refusals: list[str] = []
        for profile in candidate_profiles(gpu_info(env), load_profiles()):
            try:
                plans = plan_builds(export, profile, precision, config.window_segments)
                folder = cache.resolve(env, build_request(plans, checksum, profile), rebuild=False).folder
                break
            except (BuildError, EngineCacheError) as error:
                refusals.append(str(error))
        if folder is None:
            raise BackendUnavailable(refusals[0] if refusals else "no device profile")
        gate = cache.read_metadata(folder).get("gate")
        if precision != "fp32" and not (gate or {}).get("accepted"):
            raise BackendUnavailable(f"{folder}: the {precision} engines did not pass the agreement gate "
                                     f"({'not run' if gate is None else 'rejected'})")  # fmt: skip
        return TensorRTBackend(folder, export, load_tokenizer(checkpoint), device=device, **decision_options(config))
    except (ArtifactError, EngineCacheError, ProfileError) as error:
        raise BackendUnavailable(str(error)) from None


def candidate_profiles(gpu, profiles: dict) -> list:
    """The profile matching this GPU first, then every other one for its compute capability (engines built with
    `--profile NAME` on this GPU are found too); `ProfileError` when none fits."""
    from vispeak_ros.engines.device_profiles import ProfileError, select_profile

    try:
        preferred = [select_profile(gpu, profiles)]
    except ProfileError:
        preferred = []
    others = [p for p in profiles.values() if p not in preferred and gpu.compute_capability in p.compute_capability
              and p.jetson == gpu.jetson]  # fmt: skip
    if not preferred and not others:
        select_profile(gpu, profiles)  # raises with the reason
    return preferred + others


def gpu_info(env):
    """Profile selection's view of the current GPU (memory as CUDA reports it; Jetson when L4T is present)."""
    from vispeak_ros.engines.device_profiles import GpuInfo

    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return GpuInfo(env.gpu_name, env.compute_capability, props.total_memory / 2**30, env.l4t_version is not None)
