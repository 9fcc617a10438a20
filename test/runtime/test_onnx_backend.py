"""The onnxruntime backend in the runtime: the same stream gives the same outputs as torch; `backend: auto` and
the named backends choose, refuse and log as configured."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import onnxruntime as ort
import pytest

from vispeak_ros.runtime.assistant import Assistant
from vispeak_ros.runtime.backends.factory import BackendUnavailable, create_backend
from vispeak_ros.runtime.config import ConfigError, RuntimeConfig
from vispeak_ros.runtime.outputs import FeedbackChunk, FinalAnswer, InformativeRecord, TypedEvent

TOL = 1e-4


@pytest.fixture(scope="module")
def demo():
    from vispeak_ros.data import demo_checkpoint
    from vispeak_ros.model import load_checkpoint

    return load_checkpoint(demo_checkpoint())


@pytest.fixture(scope="module")
def engine_dir(demo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache root holding the demo checkpoint's export where the factory looks for it."""
    from vispeak_ros.data import demo_checkpoint
    from vispeak_ros.engines.export import export_onnx
    from vispeak_ros.runtime.backends.artifacts import default_onnx_dir, model_checksum

    root = tmp_path_factory.mktemp("engines")
    checksum = model_checksum(demo_checkpoint())
    export_onnx(demo, default_onnx_dir(checksum, root), checksum=checksum)
    return root


def _summary(outputs):
    """Everything the outside world sees, with probabilities kept apart (compared within a tolerance)."""
    kinds = [type(o).__name__ for o in outputs]
    texts = [(o.answer_id, o.text) for o in outputs if isinstance(o, (FeedbackChunk, FinalAnswer))]
    events = [(o.event.behaviour, o.event.segment_index, o.event.text) for o in outputs if isinstance(o, TypedEvent)]
    triggers = [(o.segment_index, o.triggered) for o in outputs if isinstance(o, InformativeRecord)]
    probabilities = [o.probability for o in outputs if isinstance(o, InformativeRecord)]
    return (kinds, texts, events, triggers), probabilities


def test_demo_recording_through_onnxruntime_equals_torch(demo, engine_dir: Path):
    from vispeak_ros.data import demo_recording
    from vispeak_ros.tools.bag_source import read_segments

    segments = list(itertools.islice(read_segments(demo_recording()), 15))  # the first 15 s
    config = RuntimeConfig(backend="onnxruntime", engine_dir=str(engine_dir), ort_provider="cpu")
    ours = Assistant(config)
    assert ours.backend.name == "onnxruntime"
    theirs = Assistant.from_model(demo, demo.tokenizer, config.with_overrides(backend="torch"))
    a = _summary([o for s in segments for o in ours.process(s)])
    b = _summary([o for s in segments for o in theirs.process(s)])
    assert a[0] == b[0]
    assert a[0][2] and any(fired for _, fired in a[0][3])  # the stream did trigger and answer (the wave, at 4.9 s)
    assert max(abs(x - y) for x, y in zip(a[1], b[1], strict=True)) < TOL


def test_auto_without_an_export_falls_back_to_torch_and_says_why(tmp_path: Path, caplog):
    with caplog.at_level(logging.INFO, logger="vispeak_ros.runtime.backends"):
        backend = create_backend(RuntimeConfig(backend="auto", engine_dir=str(tmp_path)))
    assert backend.name == "torch"
    assert backend.selection[-1] == "backend auto: using torch"
    assert any(line.startswith("tensorrt: ") for line in backend.selection)
    assert any(line.startswith("onnxruntime-cpu: no ONNX export") for line in backend.selection)
    assert "using torch" in caplog.text and "skipping onnxruntime-cpu" in caplog.text


def test_auto_with_an_export_picks_onnxruntime_cpu(engine_dir: Path):
    backend = create_backend(RuntimeConfig(backend="auto", engine_dir=str(engine_dir)))
    assert backend.name == "onnxruntime" and backend.provider == "cpu"
    assert backend.selection[-1] == "backend auto: using onnxruntime-cpu"


def test_named_backends_are_refused_with_their_reason(tmp_path: Path, engine_dir: Path):
    with pytest.raises(BackendUnavailable, match="no ONNX export at"):
        create_backend(RuntimeConfig(backend="onnxruntime", engine_dir=str(tmp_path), ort_provider="cpu"))
    with pytest.raises(BackendUnavailable, match=r"TensorRT backend is not part of this build|tensorrt not installed"):
        create_backend(RuntimeConfig(backend="tensorrt"))
    with pytest.raises(BackendUnavailable, match="no int8 variant"):
        create_backend(
            RuntimeConfig(
                backend="onnxruntime", engine_dir=str(engine_dir), ort_provider="cpu", engine_precision="int8"
            )
        )
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        cuda = RuntimeConfig(backend="onnxruntime", engine_dir=str(engine_dir), ort_provider="cuda")
        with pytest.raises(BackendUnavailable, match="no CUDA execution provider"):
            create_backend(cuda)
    export = next((engine_dir / "onnx").iterdir())
    other = RuntimeConfig(backend="onnxruntime", engine_dir=str(export), checkpoint=str(tmp_path), ort_provider="cpu")
    with pytest.raises(BackendUnavailable, match="exported from another checkpoint"):
        create_backend(other)


def test_new_configuration_keys_are_validated():
    assert RuntimeConfig(backend="auto", ort_provider="cuda", engine_precision="int8").backend == "auto"
    for key, value in (("backend", "tflite"), ("ort_provider", "rocm"), ("engine_precision", "int2")):
        with pytest.raises(ConfigError, match=key):
            RuntimeConfig().with_overrides(**{key: value})


def test_an_unchanged_checkpoint_is_recognised_by_its_file_stats_without_hashing(demo, tmp_path: Path):
    """The manifest records the checkpoint's file names, sizes and mtimes: a start with the same files finds the
    export without hashing the checkpoint (here the recorded checksum is deliberately wrong, so only the stats can
    match); once a file changes, the checkpoint is hashed and the export no longer belongs to it."""
    import os
    import shutil

    from vispeak_ros.data import demo_checkpoint
    from vispeak_ros.engines.export import export_onnx
    from vispeak_ros.runtime.backends.artifacts import ArtifactError, checkpoint_stats, find_onnx_export

    checkpoint = Path(shutil.copytree(demo_checkpoint(), tmp_path / "ckpt"))
    folder = tmp_path / "engines" / "onnx" / "somewhere"
    export_onnx(demo, folder, checksum="0" * 64, checkpoint_files=checkpoint_stats(checkpoint))
    assert find_onnx_export(checkpoint, tmp_path / "engines") == folder
    assert find_onnx_export(checkpoint, folder) == folder
    config = checkpoint / "config.json"
    os.utime(config, ns=(config.stat().st_atime_ns, config.stat().st_mtime_ns + 10**9))
    with pytest.raises(ArtifactError, match="no ONNX export at"):
        find_onnx_export(checkpoint, tmp_path / "engines")
    with pytest.raises(ArtifactError, match="exported from another checkpoint"):
        find_onnx_export(checkpoint, folder)
