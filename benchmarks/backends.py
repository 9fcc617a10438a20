"""onnxruntime CPU vs torch CPU on the demo model: the per-segment LLM step, a decode step and the encoders.

Both backends take the same precomputed blocks (one frame block of 65 rows + one audio block of 13 rows per
segment) through the shared session loop with the trigger off (silent prefill steps, the steady-state cost of
watching), on a windowed cache as at run time; the KV caches and the last logits are compared afterwards.
Both run with the same thread count (torch's). Figures:
- torch_segment_ms / ort_segment_ms: median wall time of one segment's two LLM steps;
- ort_torch_ratio: their ratio (goal <= 1.0); max_abs_diff: largest difference of logits, informative logits and
  KV cache after the run (goal < 1e-4);
- torch_decode_ms / ort_decode_ms: one single-row step (an answer token) on the same cache;
- torch_encode_ms / ort_encode_ms: encoding one frame and one second of audio;
- ort_int8_segment_ms: the dynamically quantized INT8 step graph (full runs only).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

DESCRIPTION = "onnxruntime CPU vs torch CPU per-segment step, demo model: ort_torch_ratio (goal <= 1), max_abs_diff"


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def run(quick: bool = False) -> dict:
    from vispeak_ros.data import demo_checkpoint
    from vispeak_ros.engines.export import export_onnx, model_checksum
    from vispeak_ros.engines.variants import quantize_int8
    from vispeak_ros.model import load_checkpoint
    from vispeak_ros.runtime.backends.onnx_backend import OnnxBackend
    from vispeak_ros.runtime.backends.torch_backend import TorchBackend

    threads = torch.get_num_threads()
    model = load_checkpoint(demo_checkpoint())
    tokenizer = model.tokenizer
    segments = 20 if quick else 120
    options = {"threshold": 3.0, "window_segments": 60, "max_answer_tokens": 8}  # threshold 3: never triggers
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(8)]
    audio = (rng.standard_normal(16000) * 0.05).astype(np.float32)
    system = tokenizer.encode("You are a helpful assistant.")
    figures: dict = {"threads": threads, "segments": segments}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "onnx"
        export_onnx(model, folder, checksum=model_checksum(demo_checkpoint()))
        backends = {
            "torch": TorchBackend(model, tokenizer, **options),
            "ort": OnnxBackend(folder, tokenizer, threads=threads, **options),
        }
        if not quick:
            quantize_int8(folder / "llm_step.onnx", folder / "llm_step.int8.onnx")
            backends["ort_int8"] = OnnxBackend(
                folder, tokenizer, threads=threads, step_file="llm_step.int8.onnx", verify_files=False, **options
            )
        with torch.no_grad():
            for name, backend in backends.items():
                backend.start([*system, backend.tokens.seg])
                encode, steps = [], []
                blocks = []
                for frame in frames:  # encoders, timed apart
                    started = time.perf_counter()
                    blocks.append((backend.frame_block(frame), backend.audio_block(audio)))
                    encode.append(time.perf_counter() - started)
                for i in range(segments):
                    frame_rows, audio_rows = blocks[i % len(blocks)]
                    started = time.perf_counter()
                    backend.step(frame_rows, "frame")
                    backend.step(audio_rows, "audio")
                    steps.append(time.perf_counter() - started)
                decode = []
                step, pad = backend.session.step, backend.session.step.embed([backend.tokens.pad])
                for _ in range(20):  # one answer-token step on the full cache, then restored
                    saved = step.snapshot()
                    started = time.perf_counter()
                    step.run(pad, [backend.tokens.pad], "agent_first", True)
                    decode.append(time.perf_counter() - started)
                    step.restore(saved)
                figures[f"{name}_segment_ms"] = _median_ms(steps)
                figures[f"{name}_decode_ms"] = _median_ms(decode)
                figures[f"{name}_encode_ms"] = _median_ms(encode)
        probe = torch.from_numpy(rng.standard_normal((5, model.config.hidden_size)).astype(np.float32))
        outs = {name: backends[name].session.probe(probe, [backends[name].tokens.pad] * 5) for name in ("torch", "ort")}
        diffs = [float((outs["ort"] - outs["torch"]).abs().max())]
        for a, b in zip(backends["ort"].session.cache.layers, backends["torch"].session.cache.layers, strict=True):
            diffs += [float(np.abs(a.keys - b.keys.numpy()).max()), float(np.abs(a.values - b.values.numpy()).max())]
    result = {
        "ort_torch_ratio": figures["ort_segment_ms"] / figures["torch_segment_ms"],
        "max_abs_diff": max(diffs),
        "torch_segment_ms": figures["torch_segment_ms"],
        "ort_segment_ms": figures["ort_segment_ms"],
        "torch_decode_ms": figures["torch_decode_ms"],
        "ort_decode_ms": figures["ort_decode_ms"],
        "torch_encode_ms": figures["torch_encode_ms"],
        "ort_encode_ms": figures["ort_encode_ms"],
    }
    if "ort_int8_segment_ms" in figures:
        result["ort_int8_segment_ms"] = figures["ort_int8_segment_ms"]
    result |= {"threads": threads, "segments": segments}
    return result
