"""The onnxruntime backend: exported graphs (vision, audio, LLM step) behind the runtime's `Backend` interface.

The decision loop is the shared `SessionBackend` / `StreamingSession`; only model execution differs: blocks are
encoded by `vision.onnx` / `audio.onnx`, and `OnnxLLMStep` runs `llm_step.onnx` (fusion + LLM + heads) over a host
KV cache (`ArrayKVCache`, numpy, one array pair per layer). Eviction re-rotates the retained keys with the same
function as the torch cache (`model.cache.rerotate_keys`), so both caches hold the same numbers.
Torch is still used on the host, for preprocessing (the model layer's processors) and the session's small
bookkeeping tensors (CPU, zero-copy views of onnxruntime's outputs); no torch module runs.

Providers: "cpu" (CPUExecutionProvider) or "cuda" (CUDAExecutionProvider, falling back to CPU for unsupported
nodes). With CUDA the cache still lives on the host and crosses the bus every step: correct, not fast; the TensorRT
backend keeps it on the GPU.
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
from vispeak_ros.runtime.backends.artifacts import ArtifactError, read_manifest
from vispeak_ros.runtime.backends.session_backend import AUDIO_ROWS, SessionBackend

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def available_providers() -> list[str]:
    """Our names ("cpu", "cuda") of the execution providers this onnxruntime build offers."""
    import onnxruntime as ort

    offered = set(ort.get_available_providers())
    return [name for name, provider in PROVIDERS.items() if provider in offered]


def open_session(path: Path, provider: str, threads: int | None = None):
    import onnxruntime as ort

    if provider not in PROVIDERS:
        raise ValueError(f"onnxruntime provider must be one of {', '.join(PROVIDERS)}, got {provider!r}")
    if provider not in available_providers():
        raise RuntimeError(f"onnxruntime provider {provider!r} is not available in this onnxruntime build")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: the CUDA provider warns about nodes it leaves on the CPU
    if threads:
        options.intra_op_num_threads = threads
    providers = [PROVIDERS[provider]] + (["CPUExecutionProvider"] if provider != "cpu" else [])
    return ort.InferenceSession(str(path), options, providers=providers)


class _Layer:
    __slots__ = ("keys", "values")

    def __init__(self, keys: np.ndarray, values: np.ndarray) -> None:
        self.keys, self.values = keys, values


class ArrayKVCache:
    """Per-layer keys/values [1, kv_heads, P, head_dim] as numpy arrays; `drop` = `SinkWindowCache.drop`."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, inv_freq: torch.Tensor, dtype=np.float32) -> None:
        empty = np.zeros((1, kv_heads, 0, head_dim), dtype=dtype)
        self.layers = [_Layer(empty, empty) for _ in range(layers)]
        self.inv_freq = inv_freq

    def get_seq_length(self) -> int:
        return int(self.layers[0].keys.shape[2])

    def append(self, new: Sequence[np.ndarray]) -> None:
        for i, layer in enumerate(self.layers):
            layer.keys = np.concatenate([layer.keys, new[2 * i]], axis=2)
            layer.values = np.concatenate([layer.values, new[2 * i + 1]], axis=2)

    def drop(self, start: int, count: int) -> None:
        if count <= 0:
            return
        length = self.get_seq_length()
        if start < 0 or start + count > length:
            raise ValueError(f"cannot drop [{start}, {start + count}) from a cache of {length} positions")
        for layer in self.layers:
            tail = rerotate_keys(torch.from_numpy(layer.keys[..., start + count :, :]), -count, self.inv_freq)
            layer.keys = np.concatenate([layer.keys[..., :start, :], tail.numpy()], axis=2)
            layer.values = np.concatenate([layer.values[..., :start, :], layer.values[..., start + count :, :]], 2)


class OnnxLLMStep:
    """`model.session.LLMStep` over `llm_step.onnx` and the host embedding table."""

    def __init__(self, session, manifest: dict[str, Any], embed_table: np.ndarray) -> None:
        info = manifest["graphs"]["llm_step"]
        self.session = session
        self.inputs, self.outputs = info["inputs"], info["outputs"]
        self.table = embed_table
        self.dtype = np.float16 if manifest["dtype"] == "float16" else np.float32
        self._info = info
        self.reset()
        self.has_informative_head = bool(info["informative_head"])

    def reset(self) -> None:
        info = self._info
        inv_freq = torch.tensor(info["rope_inv_freq"], dtype=torch.float32)
        self.cache = ArrayKVCache(info["layers"], info["kv_heads"], info["head_dim"], inv_freq, self.dtype)

    def run(
        self, user_embeds: torch.Tensor, agent_ids: list[int], order: FusionOrder, all_logits: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        user = np.ascontiguousarray(user_embeds.detach().cpu().numpy(), dtype=self.dtype)
        agent = self.table[np.asarray(agent_ids, dtype=np.int64)].astype(self.dtype, copy=False)
        if order == "user_first":  # the fusion is symmetric in its operands' roles: swapping them swaps the order
            user, agent = agent, user
        elif order != "agent_first":
            raise ValueError(f"fusion order {order!r} is not agent_first or user_first")
        start = self.cache.get_seq_length()
        feeds = {"user_embeds": user, "agent_embeds": agent, "position_ids": np.arange(start, start + len(user))}
        for i, layer in enumerate(self.cache.layers):
            feeds[self.inputs[3 + 2 * i]] = layer.keys
            feeds[self.inputs[4 + 2 * i]] = layer.values
        logits, informative, *new = self.session.run(None, feeds)
        self.cache.append(new)
        logits = logits if all_logits else logits[-1:]
        return torch.from_numpy(informative.astype(np.float32)), torch.from_numpy(logits.astype(np.float32))

    def embed(self, ids: list[int]) -> torch.Tensor:
        return torch.from_numpy(self.table[np.asarray(list(ids), dtype=np.int64)])

    def snapshot(self) -> Any:
        return [(layer.keys, layer.values) for layer in self.cache.layers]  # appends make new arrays

    def restore(self, state: Any) -> None:
        for layer, (keys, values) in zip(self.cache.layers, state, strict=True):
            layer.keys, layer.values = keys, values


class OnnxBackend(SessionBackend):
    """Graphs from an export folder (manifest.json), tokenizer from the checkpoint folder."""

    name = "onnxruntime"

    def __init__(
        self,
        graphs_dir: str | Path,
        tokenizer,
        *,
        provider: str = "cpu",
        step_file: str | None = None,
        verify_files: bool = True,
        threads: int | None = None,
        threshold: float,
        window_segments: int | None,
        max_answer_tokens: int,
        preempt: bool = True,
        release: float = 1.0,
        audio_questions: bool = False,
    ) -> None:
        from safetensors.numpy import load_file

        root = Path(graphs_dir)
        manifest = read_manifest(root)
        step_name = step_file or manifest["graphs"]["llm_step"]["file"]
        if verify_files:  # names and sizes (cheap at every start); the sha256 values are for offline checks
            sizes = manifest.get("file_sizes", {})
            for name in sorted({step_name, manifest["embeddings"], *(g["file"] for g in manifest["graphs"].values())}):
                path = root / name
                if name not in sizes or not path.is_file() or path.stat().st_size != sizes[name]:
                    raise ArtifactError(f"{path}: missing, unknown to the manifest or changed since export")
        self.manifest, self.provider, self.graphs_dir, self.step_file = manifest, provider, root, step_name
        table = load_file(str(root / manifest["embeddings"]))["embed_tokens"]
        dtype = np.float16 if manifest["dtype"] == "float16" else np.float32
        self._table = table.astype(dtype)
        step = OnnxLLMStep(open_session(root / step_name, provider, threads), manifest, self._table)
        graphs = manifest["graphs"]
        self._vision = open_session(root / graphs["vision"]["file"], provider, threads) if "vision" in graphs else None
        self._audio = open_session(root / graphs["audio"]["file"], provider, threads) if "audio" in graphs else None
        pre = manifest["preprocess"]
        self._vision_cfg = SimpleNamespace(
            image_size=pre["image_size"], image_mean=pre["image_mean"], image_std=pre["image_std"]
        )
        self._fbank = FbankConfig(**pre["fbank"]) if pre["fbank"] else None
        seg = tokenizer.special_tokens().seg if tokenizer is not None else 0
        self._seg_row = self._table[[seg]]
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

    def frame_block(self, frame: np.ndarray) -> torch.Tensor:
        if self._vision is None:
            raise RuntimeError("this export has no vision graph")
        pixels = preprocess_image(frame, self._vision_cfg)[None].numpy().astype(self._table.dtype, copy=False)
        tokens = self._vision.run(None, {"pixel_values": pixels})[0][0]
        return torch.from_numpy(np.concatenate([tokens, self._seg_row]))

    def audio_block(self, samples: np.ndarray) -> torch.Tensor:
        if self._audio is None:
            raise RuntimeError("this export has no audio graph")
        fbank, lengths = audio_chunk_features(samples, self._fbank)
        feeds = {"fbank": fbank[:1].numpy().astype(self._table.dtype, copy=False), "lengths": lengths[:1].numpy()}
        tokens = self._audio.run(None, feeds)[0][0]
        return torch.from_numpy(np.concatenate([tokens, self._seg_row]))
