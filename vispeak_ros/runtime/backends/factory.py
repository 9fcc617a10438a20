"""Build the configured backend; `backend: auto` takes the fastest one that works here and says why.

Order for `auto`: TensorRT (engines for this checkpoint and GPU), then onnxruntime with CUDA, then onnxruntime on
the CPU (both need an ONNX export of this checkpoint: `vispeak-build-engine --format onnx`), then torch. Each
candidate that cannot be used is skipped with its reason; the choice and the reasons are logged (logger
`vispeak_ros.runtime.backends`) and kept on the backend as `backend.selection` (lines of text). Nothing is
exported or built here: building never happens when an assistant starts.

A named backend (`torch`, `onnxruntime`, `tensorrt`) is used or refused with its one-line reason
(`BackendUnavailable`), never silently replaced.

TensorRT plugs in as the module `vispeak_ros.runtime.backends.tensorrt_backend` with
`create_backend(config, checkpoint: Path) -> Backend`, raising `BackendUnavailable` with its reason.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from vispeak_ros.runtime.backends.base import Backend
from vispeak_ros.runtime.config import RuntimeConfig

LOG = logging.getLogger("vispeak_ros.runtime.backends")
TENSORRT_MODULE = "vispeak_ros.runtime.backends.tensorrt_backend"


class BackendUnavailable(RuntimeError):
    """This backend cannot run here; the message says why in one line."""


def checkpoint_path(config: RuntimeConfig) -> Path:
    if config.checkpoint:
        return Path(config.checkpoint)
    from vispeak_ros.data import demo_checkpoint

    return Path(demo_checkpoint())


def _torch(config: RuntimeConfig, checkpoint: Path) -> Backend:
    import torch

    from vispeak_ros.model import load_checkpoint
    from vispeak_ros.runtime.backends.torch_backend import TorchBackend

    model = load_checkpoint(
        checkpoint,
        dtype=getattr(torch, config.dtype),
        device=config.device,
        vision_tower=config.vision_tower or None,
        audio_encoder=config.audio_encoder or None,
    )
    return TorchBackend(model, model.tokenizer, **decision_options(config))


def decision_options(config: RuntimeConfig) -> dict:
    """The keyword arguments every `SessionBackend` takes from the configuration."""
    return {
        "threshold": config.trigger_threshold,
        "window_segments": config.window_segments,
        "max_answer_tokens": config.max_answer_tokens,
        "release": config.trigger_release,
        "audio_questions": config.audio_questions,
    }


def _onnxruntime(config: RuntimeConfig, checkpoint: Path, provider: str) -> Backend:
    try:
        from vispeak_ros.runtime.backends.onnx_backend import OnnxBackend, available_providers
    except ImportError as error:
        raise BackendUnavailable(f"onnxruntime not installed ({error.name})") from None
    from vispeak_ros.model.tokenizer import load_tokenizer
    from vispeak_ros.runtime.backends.artifacts import ArtifactError, find_onnx_export, read_manifest

    if provider not in available_providers():
        raise BackendUnavailable(f"onnxruntime has no {provider.upper()} execution provider in this build")
    if config.dtype != "float32":
        raise BackendUnavailable(f"dtype {config.dtype}: the ONNX export path is float32 (engine_precision for int8)")
    if config.engine_precision not in ("fp32", "int8"):
        raise BackendUnavailable(f"engine_precision {config.engine_precision} is a TensorRT precision; onnxruntime "
                                 "runs the fp32 export or its gated int8 variant")  # fmt: skip
    try:
        folder = find_onnx_export(checkpoint, config.engine_dir or None)
        step_file = None
        if config.engine_precision == "int8":
            variant = read_manifest(folder).get("variants", {}).get("int8")
            if variant is None:
                raise BackendUnavailable(f"{folder}: no int8 variant (vispeak-build-engine --format onnx --int8)")
            if not variant.get("gate", {}).get("accepted"):
                raise BackendUnavailable(f"{folder}: the int8 variant did not pass the agreement gate")
            step_file = variant["file"]
        tokenizer = load_tokenizer(checkpoint)
        return OnnxBackend(folder, tokenizer, provider=provider, step_file=step_file, **decision_options(config))
    except ArtifactError as error:
        raise BackendUnavailable(str(error)) from None


def _tensorrt(config: RuntimeConfig, checkpoint: Path) -> Backend:
    try:
        module = importlib.import_module(TENSORRT_MODULE)
    except ModuleNotFoundError as error:
        if error.name == TENSORRT_MODULE:
            raise BackendUnavailable("the TensorRT backend is not part of this build") from None
        raise BackendUnavailable(f"tensorrt not installed ({error.name})") from None
    return module.create_backend(config, checkpoint)


def _ort_providers(config: RuntimeConfig) -> list[str]:
    return ["cuda", "cpu"] if config.ort_provider == "auto" else [config.ort_provider]


def create_backend(config: RuntimeConfig) -> Backend:
    """The configured backend over the configured checkpoint (the bundled demo checkpoint when empty)."""
    checkpoint = checkpoint_path(config)
    if config.backend == "torch":
        candidates = [("torch", lambda: _torch(config, checkpoint))]
    elif config.backend == "tensorrt":
        candidates = [("tensorrt", lambda: _tensorrt(config, checkpoint))]
    elif config.backend == "onnxruntime":
        candidates = [
            (f"onnxruntime-{p}", lambda p=p: _onnxruntime(config, checkpoint, p)) for p in _ort_providers(config)
        ]
    else:  # auto
        candidates = [("tensorrt", lambda: _tensorrt(config, checkpoint))]
        candidates += [(f"onnxruntime-{p}", lambda p=p: _onnxruntime(config, checkpoint, p)) for p in ("cuda", "cpu")]
        candidates += [("torch", lambda: _torch(config, checkpoint))]
    skipped: list[str] = []
    for name, make in candidates:
        try:
            backend = make()
        except BackendUnavailable as reason:
            skipped.append(f"{name}: {reason}")
            if config.backend == "auto":
                LOG.info("backend auto: skipping %s: %s", name, reason)
            continue
        chosen = f"backend {config.backend}: using {name}"
        LOG.info("%s%s", chosen, f" (skipped {len(skipped)})" if skipped else "")
        backend.selection = (*skipped, chosen)
        return backend
    raise BackendUnavailable(f"backend {config.backend}: nothing usable; " + "; ".join(skipped))
