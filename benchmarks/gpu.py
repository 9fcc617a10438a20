"""The torch CUDA backend's LLM step at 7B shape (Qwen2-7B: hidden 3584, 28 layers, 28 heads / 4 KV heads,
vocab 152064) on random fp16 weights, against the memory-bandwidth ceiling. Runs only where CUDA is present;
elsewhere it returns `skipped=...` and nothing else.

What is timed is `TorchLLMStep.run` (fusion + Qwen2 + lm_head + informative head) on the session's steady state:
a full window (60 segments of 65 frame rows + 13 audio rows) after a 45-row system prompt. Frame and audio rows are
random embeddings: the vision and audio encoders are not in these figures.
- segment_ms: one stream second = a 65-row frame step + a 13-row audio step (median; the cache is restored after
  each, so every sample sees the same cache length);
- decode_tok_s: one-row steps (answer tokens) per second on that cache;
- ceiling_tok_s: measured copy bandwidth / bytes one decode step must read (every weight except the embedding
  table, plus the whole KV cache): no decoder can beat it at batch 1; decode_tok_s / ceiling_tok_s is the
  efficiency;
- bandwidth_gbs: device-to-device copy bandwidth, (read + write) / time, of a 1 GiB tensor.
Memory permitting, all 28 layers are built and measured (layers_measured=28). Otherwise (and with --quick) two
shallow models at 7B width are measured and the times extrapolated linearly per layer to 28 layers; the figures
then say `extrapolated=per_layer` and which depths were measured. onnxruntime CUDA is not measured here (its
backend keeps the KV cache on the host; the figure would mostly time PCIe copies).
"""

from __future__ import annotations

import statistics
import time

import torch

DESCRIPTION = "torch CUDA LLM step at 7B shape (random fp16 weights): segment_ms, decode_tok_s, ceiling_tok_s"

QWEN2_7B = {
    "vocab_size": 152064,
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "rope_theta": 1e6,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
}
SYSTEM_ROWS, FRAME_ROWS, AUDIO_ROWS, WINDOW_SEGMENTS = 45, 65, 13, 60


def build_model(shape: dict, layers: int, device: str, dtype: torch.dtype):
    """A ViSpeak LLM (no encoders) of `shape` with `layers` layers, random weights, built directly on `device`."""
    from vispeak_ros.model.config import ViSpeakConfig, llm_config_from_dict
    from vispeak_ros.model.vispeak import ViSpeakForCausalLM

    config = ViSpeakConfig(llm=llm_config_from_dict({**shape, "num_hidden_layers": layers}, "benchmarks.gpu"))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = ViSpeakForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.eval().requires_grad_(False)
    return model


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def copy_bandwidth_gbs(device: str, size_bytes: int = 1 << 30, repeats: int = 10) -> float:
    source = torch.empty(size_bytes // 2, dtype=torch.float16, device=device)
    target = torch.empty_like(source)
    target.copy_(source)
    _sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        target.copy_(source)
    _sync(device)
    return 2 * size_bytes * repeats / (time.perf_counter() - started) / 1e9


@torch.no_grad()
def measure(model, device: str, *, window_segments: int, samples: int, decode_tokens: int) -> dict:
    """Median segment time and decode rate of `TorchLLMStep` on a full window, plus the bytes a decode step reads."""
    from vispeak_ros.model.session import TorchLLMStep

    step = TorchLLMStep(model)
    hidden, dtype = model.config.hidden_size, model.dtype
    gen = torch.Generator(device=device).manual_seed(0)

    def rows(count: int) -> torch.Tensor:
        return torch.randn(count, hidden, device=device, dtype=dtype, generator=gen) * 0.02

    step.run(rows(SYSTEM_ROWS), [0] * SYSTEM_ROWS, "agent_first", False)
    for _ in range(window_segments):  # fill the window as a long stream leaves it
        step.run(rows(FRAME_ROWS), [0] * FRAME_ROWS, "agent_first", False)
        step.run(rows(AUDIO_ROWS), [0] * AUDIO_ROWS, "agent_first", False)
    frame, audio = rows(FRAME_ROWS), rows(AUDIO_ROWS)
    full, cache_rows = step.snapshot(), step.cache.get_seq_length()
    times = []
    for index in range(samples + 2):  # two warm-up rounds
        _sync(device)
        started = time.perf_counter()
        step.run(frame, [0] * FRAME_ROWS, "agent_first", False)
        step.run(audio, [0] * AUDIO_ROWS, "agent_first", False)
        _sync(device)
        if index >= 2:
            times.append(time.perf_counter() - started)
        step.restore(full)
    token = rows(1)
    step.run(token, [0], "agent_first", False)
    step.restore(full)
    _sync(device)
    started = time.perf_counter()
    for _ in range(decode_tokens):
        step.run(token, [0], "agent_first", False)
    _sync(device)
    decode_s = (time.perf_counter() - started) / decode_tokens
    element = torch.finfo(dtype).bits // 8
    weights = sum(p.numel() for p in model.parameters()) - model.llm.model.embed_tokens.weight.numel()
    cfg = model.config.llm
    kv = len(model.llm.model.layers) * 2 * cfg.num_key_value_heads * (hidden // cfg.num_attention_heads) * cache_rows
    return {
        "segment_s": statistics.median(times),
        "decode_s": decode_s,
        "weight_bytes": weights * element,
        "kv_bytes": kv * element,
        "cache_rows": cache_rows,
    }


def _extrapolate(low: dict, high: dict, low_layers: int, high_layers: int, layers: int) -> dict:
    """Linear in the layer count (embedding, lm_head and heads are the intercept)."""
    out = {}
    for key in ("segment_s", "decode_s", "weight_bytes", "kv_bytes"):
        per_layer = (high[key] - low[key]) / (high_layers - low_layers)
        out[key] = low[key] + per_layer * (layers - low_layers)
    out["cache_rows"] = high["cache_rows"]
    return out


def run(quick: bool = False) -> dict:
    if not torch.cuda.is_available():
        return {"skipped": "no_CUDA_device", "segment_ms": "n/a", "decode_tok_s": "n/a", "ceiling_tok_s": "n/a"}
    device, dtype = "cuda", torch.float16
    layers = QWEN2_7B["num_hidden_layers"]
    props = torch.cuda.get_device_properties(0)
    figures: dict = {"gpu": props.name.replace(" ", "_"), "dtype": "fp16", "window_segments": WINDOW_SEGMENTS}
    samples, decode_tokens = (5, 16) if quick else (20, 64)
    bandwidth = copy_bandwidth_gbs(device)
    free, _ = torch.cuda.mem_get_info()
    if not quick and free > 24 * 2**30:  # 15.2 GB of weights + the cache + activations
        model = build_model(QWEN2_7B, layers, device, dtype)
        result = measure(model, device, window_segments=WINDOW_SEGMENTS, samples=samples, decode_tokens=decode_tokens)
        del model
        figures |= {"layers_measured": layers, "extrapolated": "no"}
    else:
        depths = (2, 4) if quick else (4, 8)
        measured = []
        for depth in depths:
            model = build_model(QWEN2_7B, depth, device, dtype)
            measured.append(measure(model, device, window_segments=WINDOW_SEGMENTS, samples=samples,
                                    decode_tokens=decode_tokens))  # fmt: skip
            del model
            torch.cuda.empty_cache()
        result = _extrapolate(measured[0], measured[1], depths[0], depths[1], layers)
        figures |= {"layers_measured": f"{depths[0]}+{depths[1]}", "extrapolated": "per_layer"}
    bytes_per_token = result["weight_bytes"] + result["kv_bytes"]
    figures |= {
        "cache_rows": result["cache_rows"],
        "segment_ms": result["segment_s"] * 1000.0,
        "decode_tok_s": 1.0 / result["decode_s"],
        "bandwidth_gbs": bandwidth,
        "bytes_per_token_gb": bytes_per_token / 1e9,
        "ceiling_tok_s": bandwidth * 1e9 / bytes_per_token,
    }
    figures["efficiency"] = figures["decode_tok_s"] / figures["ceiling_tok_s"]
    figures["stream_x_realtime"] = 1000.0 / figures["segment_ms"]  # stream seconds per wall second (LLM only)
    figures["ort_cuda"] = "not_measured"
    return figures
