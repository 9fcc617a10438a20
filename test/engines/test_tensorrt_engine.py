"""TensorRT engines for real: build the demo model's engines, load them from the cache, and compare the backend's
decisions and numbers with the onnxruntime backend over the same export. Needs the `tensorrt` package and a CUDA
GPU; elsewhere every test here is skipped with the reason ("tensorrt not installed" / "no CUDA device")."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

trt = pytest.importorskip("tensorrt", reason="tensorrt not installed")
torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from vispeak_ros.data import demo_checkpoint  # noqa: E402
from vispeak_ros.engines.engine_cache import EngineCache  # noqa: E402
from vispeak_ros.engines.tensorrt_cli import build_tensorrt  # noqa: E402
from vispeak_ros.runtime.backends.artifacts import model_checksum  # noqa: E402

WINDOW = 2


@pytest.fixture(scope="module")
def engine_root(demo_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache root holding the demo export (as `vispeak-build-engine` lays it out) and its fp32 engines."""
    root = tmp_path_factory.mktemp("engines")
    checksum = model_checksum(demo_checkpoint())
    export = root / "onnx" / checksum[:16]
    shutil.copytree(demo_export, export)
    status = build_tensorrt(export, Path(demo_checkpoint()), checksum, engine_dir=root, profile_name=None,
                            precision="fp32", window_segments=WINDOW, rebuild=True, force=False)  # fmt: skip
    assert status == 0
    return root


def test_a_second_build_finds_the_engines_up_to_date(engine_root: Path):
    lines: list[str] = []
    checksum = model_checksum(demo_checkpoint())
    export = engine_root / "onnx" / checksum[:16]
    entries = EngineCache(engine_root / "tensorrt").entries()
    assert len(entries) == 1 and entries[0].metadata["request"]["precision"] == "fp32"
    options = {"profile_name": None, "precision": "fp32", "window_segments": WINDOW, "force": False}
    status = build_tensorrt(export, Path(demo_checkpoint()), checksum, engine_dir=engine_root, rebuild=False,
                            say=lines.append, **options)  # fmt: skip
    assert status == 0 and lines[-1].startswith("up to date:")
    assert EngineCache(engine_root / "tensorrt").entries()[0].metadata["built_at"] == entries[0].metadata["built_at"]


def test_the_engine_profiles_are_the_planned_ones(engine_root: Path):
    from vispeak_ros.runtime.backends.tensorrt_backend import TrtEngine

    entry = EngineCache(engine_root / "tensorrt").entries()[0]
    planned = entry.metadata["request"]["profile_shapes"]["llm_step"]
    engine = TrtEngine(
        trt.Runtime(trt.Logger(trt.Logger.WARNING)), entry.folder / "llm_step.engine", torch.device("cuda")
    )
    assert engine.engine.num_optimization_profiles == len(planned) == 2
    for index, shapes in enumerate(planned.values()):
        for name, triple in shapes.items():
            assert [list(s) for s in engine.profile_range(name, index)] == triple


def test_tensorrt_equals_onnxruntime_over_windowed_segments(engine_root: Path, demo_model):
    from vispeak_ros.runtime.backends.factory import create_backend
    from vispeak_ros.runtime.config import RuntimeConfig

    config = {"engine_dir": str(engine_root), "window_segments": WINDOW, "trigger_threshold": 0.35}
    ours = create_backend(RuntimeConfig(backend="tensorrt", **config))
    theirs = create_backend(RuntimeConfig(backend="onnxruntime", ort_provider="cpu", **config))
    assert ours.name == "tensorrt"
    tokenizer = demo_model.tokenizer
    rng = np.random.default_rng(0)
    for backend in (ours, theirs):
        backend.start([*tokenizer.encode("You are a helpful assistant."), backend.tokens.seg])
    for _ in range(5):
        frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        audio = (rng.standard_normal(16000) * 0.05).astype(np.float32)
        results = []
        for backend in (ours, theirs):
            results.append((backend.step(backend.frame_block(frame), "frame"),
                            backend.step(backend.audio_block(audio), "audio")))  # fmt: skip
        (a_frame, a_audio), (b_frame, b_audio) = results
        assert a_frame.informative_prob == pytest.approx(b_frame.informative_prob, abs=1e-3)
        assert (a_frame.started_ids, a_audio.started_ids) == (b_frame.started_ids, b_audio.started_ids)
    assert ours.cache_length() == theirs.cache_length()
    for a, b in zip(ours.session.step.cache.layers, theirs.session.step.cache.layers, strict=True):
        np.testing.assert_allclose(a.keys.cpu().numpy(), b.keys, atol=1e-3)


def test_another_window_is_refused_with_what_differs(engine_root: Path):
    from vispeak_ros.runtime.backends.factory import BackendUnavailable, create_backend
    from vispeak_ros.runtime.config import RuntimeConfig

    with pytest.raises(BackendUnavailable, match="profile_shapes differ"):
        create_backend(RuntimeConfig(backend="tensorrt", engine_dir=str(engine_root), window_segments=WINDOW + 1))
