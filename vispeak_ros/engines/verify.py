"""Check an export against the torch model it came from: the same inputs through both, largest differences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vispeak_ros.model.session import TorchLLMStep
from vispeak_ros.model.vispeak import ViSpeakForCausalLM
from vispeak_ros.runtime.backends.artifacts import read_manifest
from vispeak_ros.runtime.backends.onnx_backend import OnnxLLMStep, open_session


@torch.no_grad()
def compare_with_torch(model: ViSpeakForCausalLM, folder: str | Path, seed: int = 0) -> dict[str, float]:
    """Max abs differences (onnxruntime CPU vs torch) of frame tokens, audio tokens and, over three steps of
    different lengths, logits, informative logits and the KV cache."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    manifest = read_manifest(folder)
    gen = torch.Generator().manual_seed(seed)
    diffs: dict[str, float] = {}
    graphs = manifest["graphs"]
    if "vision" in graphs:
        size = graphs["vision"]["image_size"]
        pixels = torch.randn(1, 3, size, size, generator=gen)
        ours = open_session(folder / graphs["vision"]["file"], "cpu").run(None, {"pixel_values": pixels.numpy()})[0]
        diffs["vision"] = float(np.abs(ours - model.encode_images(pixels).numpy()).max())
    if "audio" in graphs:
        fbank = torch.randn(1, graphs["audio"]["frames"], 80, generator=gen) * 3 + 8
        lengths = torch.tensor([graphs["audio"]["frames"]])
        feeds = {"fbank": fbank.numpy(), "lengths": lengths.numpy()}
        ours = open_session(folder / graphs["audio"]["file"], "cpu").run(None, feeds)[0]
        diffs["audio"] = float(np.abs(ours - model.encode_audio(fbank, lengths).numpy()).max())
    table = load_file(str(folder / manifest["embeddings"]))["embed_tokens"]
    onnx_step = OnnxLLMStep(open_session(folder / graphs["llm_step"]["file"], "cpu"), manifest, table)
    torch_step = TorchLLMStep(model)
    logits = informative = 0.0
    vocab = graphs["llm_step"]["vocab_size"]
    for rows in (7, 1, 5):
        user = torch.randn(rows, model.config.hidden_size, generator=gen)
        agent = torch.randint(0, vocab, (rows,), generator=gen).tolist()
        a_inf, a_logits = onnx_step.run(user, agent, "agent_first", True)
        b_inf, b_logits = torch_step.run(user, agent, "agent_first", True)
        logits = max(logits, float((a_logits - b_logits).abs().max()))
        informative = max(informative, float((a_inf - b_inf).abs().max()))
    diffs["logits"], diffs["informative"] = logits, informative
    diffs["kv_cache"] = max(
        float(np.abs(a.keys - b.keys.numpy()).max())
        for a, b in zip(onnx_step.cache.layers, torch_step.cache.layers, strict=True)
    )
    return diffs
