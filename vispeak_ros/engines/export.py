"""Export a ViSpeak checkpoint to ONNX: vision, audio and LLM-step graphs, the embedding table and a manifest.

Output folder (default `$XDG_CACHE_HOME/vispeak_ros/engines/onnx/<model checksum[:16]>`, see `default_onnx_dir`):

    manifest.json            what was exported: model checksum, shapes, input/output names, files + sha256
    vision.onnx              [1, 3, S, S] pixels -> [1, 64, H] frame tokens           (absent without a tower)
    audio.onnx               [1, 98, 80] fbank + [1] lengths -> [1, 12, H] tokens    (absent without an encoder)
    llm_step.onnx            fusion + LLM step + lm_head + informative head (see `graphs.LLMStepGraph`)
    embeddings.safetensors   the token embedding table [V, H] (host-side lookup)

Exports are reproducible: the TorchScript exporter with fixed example inputs, doc strings stripped, fixed producer
fields, so the same checkpoint gives the same bytes twice (a test checks it). Graphs above 1.5 GB of weights are
written with one external data file beside them (protobuf's 2 GB limit; the 7B step graph needs it).
"""

from __future__ import annotations

import copy
import io
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from vispeak_ros.engines.graphs import AudioGraph, LLMStepGraph, VisionGraph
from vispeak_ros.model.vispeak import ViSpeakForCausalLM
from vispeak_ros.runtime.backends.artifacts import (
    FORMAT_VERSION,
    ArtifactError,
    cache_root,
    default_onnx_dir,
    file_sha256,
    model_checksum,
    read_manifest,
    write_manifest,
)

__all__ = [
    "ExportError",
    "cache_root",
    "default_onnx_dir",
    "export_onnx",
    "file_sha256",
    "model_checksum",
    "read_manifest",
    "step_io_names",
    "write_manifest",
]

OPSET = 17
AUDIO_FRAMES = 98  # Kaldi fbank frames of exactly 1 s of 16 kHz audio (25 ms window, 10 ms shift)
EXTERNAL_DATA_BYTES = 1_500_000_000
_DTYPES = {"float32": torch.float32, "float16": torch.float16}


ExportError = ArtifactError


def _export(module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], axes: dict):
    """TorchScript export to memory, then normalised (no doc strings, fixed producer) and saved."""
    import onnx

    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            module,
            args,
            buffer,
            dynamo=False,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    proto.producer_name, proto.producer_version, proto.doc_string = "vispeak_ros", "1", ""
    for node in proto.graph.node:
        node.doc_string = ""
    weights = sum(len(t.raw_data) for t in proto.graph.initializer)
    path.unlink(missing_ok=True)
    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)
    if weights > EXTERNAL_DATA_BYTES:
        onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data.name)
        onnx.checker.check_model(str(path))
    else:
        onnx.save_model(proto, str(path))
        onnx.checker.check_model(proto)


def step_io_names(layers: int) -> tuple[list[str], list[str]]:
    """Input and output names of the LLM step graph, in order."""
    past = [f"past_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]
    new = [f"new_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]
    return ["user_embeds", "agent_embeds", "position_ids", *past], ["logits", "informative_logits", *new]


def export_onnx(
    model: ViSpeakForCausalLM,
    out_dir: str | Path,
    *,
    checksum: str,
    dtype: str = "float32",
    checkpoint_files: dict[str, list[int]] | None = None,
) -> dict[str, Any]:
    """Export every graph of `model` into `out_dir` and write the manifest; returns the manifest.
    `checkpoint_files` (`artifacts.checkpoint_stats`) lets the runtime recognise the checkpoint without hashing."""
    if dtype not in _DTYPES:
        raise ExportError(f"export dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch_dtype = _DTYPES[dtype]
    if model.dtype != torch_dtype:  # never change the caller's model
        model = copy.deepcopy(model).to(torch_dtype)
    model.eval()
    cfg = model.config
    hidden = cfg.hidden_size
    graphs: dict[str, Any] = {}
    if model.vision_tower is not None:
        size = cfg.vision.image_size
        pixels = torch.zeros(1, 3, size, size, dtype=torch_dtype)
        frame_tokens = int(model.encode_images(pixels).shape[1])
        _export(VisionGraph(model).eval(), (pixels,), out / "vision.onnx", ["pixel_values"], ["frame_tokens"], {})
        graphs["vision"] = {"file": "vision.onnx", "image_size": size, "frame_tokens": frame_tokens}
    if model.audio_encoder is not None:
        fbank = torch.zeros(1, AUDIO_FRAMES, cfg.audio.fbank.num_mel_bins, dtype=torch_dtype)
        lengths = torch.tensor([AUDIO_FRAMES])
        audio_tokens = int(model.encode_audio(fbank, lengths).shape[1])
        _export(
            AudioGraph(model).eval(), (fbank, lengths), out / "audio.onnx", ["fbank", "lengths"], ["audio_tokens"], {}
        )
        graphs["audio"] = {"file": "audio.onnx", "frames": AUDIO_FRAMES, "audio_tokens": audio_tokens}
    step = LLMStepGraph(model).eval()
    layers = len(step.layers)
    inputs, outputs = step_io_names(layers)
    rows, past_rows = 3, 5  # example sizes only: both axes are dynamic
    example = [torch.zeros(rows, hidden, dtype=torch_dtype)] * 2 + [torch.arange(past_rows, past_rows + rows)]
    example += [torch.zeros(1, step.kv_heads, past_rows, step.head_dim, dtype=torch_dtype)] * (2 * layers)
    axes = {"user_embeds": {0: "rows"}, "agent_embeds": {0: "rows"}, "position_ids": {0: "rows"}}
    axes |= {"logits": {0: "rows"}, "informative_logits": {0: "rows"}}
    axes |= {name: {2: "past_rows"} for name in inputs[3:]}
    axes |= {name: {2: "rows"} for name in outputs[2:]}
    _export(step, tuple(example), out / "llm_step.onnx", inputs, outputs, axes)
    graphs["llm_step"] = {
        "file": "llm_step.onnx",
        "inputs": inputs,
        "outputs": outputs,
        "layers": layers,
        "kv_heads": step.kv_heads,
        "head_dim": step.head_dim,
        "hidden_size": hidden,
        "vocab_size": int(step.lm_head.weight.shape[0]),
        "informative_head": model.informative_head is not None,
        "rope_inv_freq": [float(v) for v in step.inv_freq.tolist()],
    }
    from safetensors.torch import save_file

    table = model.llm.model.embed_tokens.weight
    save_file({"embed_tokens": table.detach().float().contiguous()}, str(out / "embeddings.safetensors"))
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "model_checksum": checksum,
        "checkpoint_files": checkpoint_files or {},
        "dtype": dtype,
        "opset": OPSET,
        "graphs": graphs,
        "embeddings": "embeddings.safetensors",
        "preprocess": {
            "image_size": cfg.vision.image_size if cfg.vision is not None else None,
            "image_mean": list(cfg.vision.image_mean) if cfg.vision is not None else None,
            "image_std": list(cfg.vision.image_std) if cfg.vision is not None else None,
            "fbank": asdict(cfg.audio.fbank) if cfg.audio is not None else None,
        },
        "variants": {},
    }
    write_manifest(out, manifest)
    model.eval()  # the exporter restores each wrapper's training flag; wrappers are eval, so is the model
    return manifest
