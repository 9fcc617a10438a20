"""The TensorRT backend's parts that run without TensorRT: clean refusals where `tensorrt` does not import (named
backend, `auto`, the builder), the engine-root rule, and the KV cache's eviction arithmetic (device-agnostic torch
code, run here on the CPU) against the onnxruntime backend's cache. Engines themselves: test_tensorrt_engine.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from vispeak_ros.runtime.backends.artifacts import cache_root
from vispeak_ros.runtime.backends.onnx_backend import ArrayKVCache
from vispeak_ros.runtime.backends.tensorrt_backend import GpuKVCache, engine_root

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
without_tensorrt = pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is installed here: the refusal does not apply")


@without_tensorrt
def test_a_named_tensorrt_backend_is_refused_with_the_reason():
    from vispeak_ros.runtime.backends.factory import BackendUnavailable, create_backend
    from vispeak_ros.runtime.config import RuntimeConfig

    with pytest.raises(BackendUnavailable, match=r"backend tensorrt: nothing usable; tensorrt: tensorrt not installed"):
        create_backend(RuntimeConfig(backend="tensorrt"))


@without_tensorrt
def test_auto_skips_tensorrt_with_its_reason_and_takes_the_onnx_export(demo_export: Path):
    from vispeak_ros.runtime.backends.factory import create_backend
    from vispeak_ros.runtime.config import RuntimeConfig

    backend = create_backend(RuntimeConfig(backend="auto", engine_dir=str(demo_export)))
    assert backend.name == "onnxruntime"
    assert backend.selection[0] == "tensorrt: tensorrt not installed (tensorrt)"
    assert backend.selection[-1] == "backend auto: using onnxruntime-cpu"


@without_tensorrt
def test_the_builder_says_tensorrt_is_missing(demo_export: Path, tmp_path: Path, capsys):
    from vispeak_ros.engines.tensorrt_cli import build_tensorrt

    status = build_tensorrt(demo_export, tmp_path, "a" * 64, engine_dir=tmp_path, profile_name=None, precision=None,
                            window_segments=2, rebuild=True, force=False)  # fmt: skip
    assert status == 2
    assert "tensorrt not installed (tensorrt)" in capsys.readouterr().err
    assert not (tmp_path / "tensorrt").exists()  # nothing written


def test_engine_root_follows_engine_dir(demo_export: Path, tmp_path: Path):
    assert engine_root("") == cache_root() / "tensorrt"
    assert engine_root(str(demo_export)) == cache_root() / "tensorrt"  # an export folder: engines in the user cache
    assert engine_root(str(tmp_path)) == tmp_path / "tensorrt"  # a cache root


def test_the_gpu_cache_evicts_and_rerotates_exactly_like_the_onnx_cache():
    rng = np.random.default_rng(0)
    inv_freq = 1.0 / (10000 ** (torch.arange(0, 16, 2, dtype=torch.float32) / 16))
    ours = GpuKVCache(2, 2, 16, inv_freq, "cpu", torch.float32)
    theirs = ArrayKVCache(2, 2, 16, inv_freq)
    for rows in (7, 3, 5):
        new = [rng.standard_normal((1, 2, rows, 16)).astype(np.float32) for _ in range(4)]
        ours.append([torch.from_numpy(a) for a in new])
        theirs.append(new)
    before = [(layer.keys, layer.values) for layer in ours.layers]
    ours.drop(4, 6)
    theirs.drop(4, 6)
    assert ours.get_seq_length() == theirs.get_seq_length() == 9
    for a, b in zip(ours.layers, theirs.layers, strict=True):
        np.testing.assert_allclose(a.keys.numpy(), b.keys, atol=1e-6)
        np.testing.assert_array_equal(a.values.numpy(), b.values)
    assert before[0][0].shape[2] == 15  # eviction made new tensors: a snapshot of references stays valid
    with pytest.raises(ValueError, match=r"cannot drop \[8, 18\) from a cache of 9 positions"):
        ours.drop(8, 10)


def test_the_runtime_looks_for_engines_of_the_matching_profile_first_then_of_any_for_this_gpu():
    from vispeak_ros.engines.device_profiles import GpuInfo, ProfileError, load_profiles
    from vispeak_ros.runtime.backends.tensorrt_backend import candidate_profiles

    profiles = load_profiles()
    names = [p.name for p in candidate_profiles(GpuInfo("Orin", "8.7", 15.3, True), profiles)]
    assert names == ["orin_nx_nano", "agx_orin_64gb"]  # an NX may run engines built with --profile agx_orin_64gb
    assert [p.name for p in candidate_profiles(GpuInfo("H100", "9.0", 79.1, False), profiles)] == ["desktop_hopper"]
    with pytest.raises(ProfileError, match="no device profile matches Tesla T4"):
        candidate_profiles(GpuInfo("Tesla T4", "7.5", 15.0, False), profiles)


def test_every_builder_precision_is_configurable_and_onnxruntime_refuses_the_tensorrt_only_ones(demo_export: Path):
    """The node can ask for whatever the builder builds (fp16, every profile's default; int4, what the Orin NX profile
    recommends for 7B); onnxruntime has only fp32 and its int8 variant and says so (under `auto`: skipped, with it)."""
    from vispeak_ros.engines.device_profiles import PRECISIONS
    from vispeak_ros.runtime.backends.factory import BackendUnavailable, create_backend
    from vispeak_ros.runtime.backends.tensorrt_backend import CONFIG_PRECISIONS
    from vispeak_ros.runtime.config import ENGINE_PRECISIONS, RuntimeConfig

    assert set(ENGINE_PRECISIONS) == set(CONFIG_PRECISIONS) == set(PRECISIONS)
    config = RuntimeConfig(backend="onnxruntime", engine_dir=str(demo_export), ort_provider="cpu")
    for precision in ("fp16", "bf16", "fp8", "int4"):
        with pytest.raises(BackendUnavailable, match=f"engine_precision {precision} is a TensorRT precision"):
            create_backend(config.with_overrides(engine_precision=precision))
    assert create_backend(config).name == "onnxruntime"  # fp32, the default, is unchanged
    chosen = create_backend(config.with_overrides(backend="auto", engine_precision="fp16"))
    assert any(line.startswith("onnxruntime-cpu: engine_precision fp16") for line in chosen.selection)
