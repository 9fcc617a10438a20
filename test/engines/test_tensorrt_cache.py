"""The TensorRT engine cache: every key input changes the key, metadata validation, stale / foreign engines rebuilt
or refused, list and clear. The cache never parses engine files, so these tests store plain bytes in their place;
no TensorRT is involved (and none is faked)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from vispeak_ros.engines.engine_cache import (
    METADATA,
    BuildRequest,
    EngineCache,
    EngineCacheError,
    Environment,
    cache_key,
    read_l4t_version,
)
from vispeak_ros.engines.tensorrt_cli import clear_engines, list_engines

ENV = Environment("Orin", "8.7", "10.3.0", "12.6", "36.4.0")
SHAPES = {"llm_step": {"segment": {"user_embeds": [[1, 64], [65, 64], [256, 64]]}}}
REQUEST = BuildRequest(
    model_checksum="a" * 64,
    graphs={"vision": "b" * 64, "llm_step": "c" * 64},
    precision="fp16",
    device_profile="agx_orin_64gb",
    profile_shapes=SHAPES,
    build_flags={"llm_step": {"flags": ["FP16"], "workspace_mb": 4096, "optimization_level": 3}},
)


def _variants() -> dict[str, tuple[Environment, BuildRequest]]:
    shapes = json.loads(json.dumps(SHAPES))
    shapes["llm_step"]["segment"]["user_embeds"][2][0] = 255
    flags = {"llm_step": {"flags": ["FP16"], "workspace_mb": 2048, "optimization_level": 3}}
    return {
        "gpu_name": (replace(ENV, gpu_name="Orin NX"), REQUEST),
        "compute_capability": (replace(ENV, compute_capability="8.9"), REQUEST),
        "tensorrt_version": (replace(ENV, tensorrt_version="10.7.0"), REQUEST),
        "cuda_version": (replace(ENV, cuda_version="12.8"), REQUEST),
        "l4t_version": (replace(ENV, l4t_version="36.3.0"), REQUEST),
        "no_l4t": (replace(ENV, l4t_version=None), REQUEST),
        "model_checksum": (ENV, replace(REQUEST, model_checksum="d" * 64)),
        "graph_sha256": (ENV, replace(REQUEST, graphs={"vision": "b" * 64, "llm_step": "e" * 64})),
        "graph_set": (ENV, replace(REQUEST, graphs={"llm_step": "c" * 64})),
        "precision": (ENV, replace(REQUEST, precision="int4")),
        "device_profile": (ENV, replace(REQUEST, device_profile="orin_nx_nano")),
        "profile_shapes": (ENV, replace(REQUEST, profile_shapes=shapes)),
        "build_flags": (ENV, replace(REQUEST, build_flags=flags)),
    }


def test_every_input_changes_the_key_and_equal_inputs_give_the_same_key():
    base = cache_key(ENV, REQUEST)
    keys = {name: cache_key(env, request) for name, (env, request) in _variants().items()}
    assert base not in keys.values()
    assert len(set(keys.values())) == len(keys)  # and no two changes collide
    reordered = replace(REQUEST, graphs={"llm_step": "c" * 64, "vision": "b" * 64})
    assert cache_key(Environment(*ENV.__dict__.values()), reordered) == base
    assert len(base) == 64 and int(base, 16) >= 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: Fri Sep 13\n", "36.4.0"),
        ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug 1\n", "35.4.1"),
    ],
)
def test_l4t_release_is_read_from_nv_tegra_release(tmp_path: Path, text: str, expected: str):
    path = tmp_path / "nv_tegra_release"
    path.write_text(text, encoding="utf-8")
    assert read_l4t_version(path) == expected


def test_l4t_release_absent_is_none_and_garbage_is_refused(tmp_path: Path):
    assert read_l4t_version(tmp_path / "missing") is None
    (tmp_path / "bad").write_text("hello\n", encoding="utf-8")
    with pytest.raises(EngineCacheError, match="unrecognised L4T release"):
        read_l4t_version(tmp_path / "bad")


def _engines(folder: Path, graphs=("vision", "llm_step"), content: bytes = b"engine bytes") -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in graphs:
        files[name] = folder / f"{name}.plan"
        files[name].write_bytes(content + name.encode())
    return files


def test_written_engines_resolve_ready_and_are_never_rebuilt(tmp_path: Path):
    cache = EngineCache(tmp_path / "cache")
    folder = cache.write(ENV, REQUEST, _engines(tmp_path / "built"))
    meta = json.loads((folder / METADATA).read_text())
    assert meta["key"] == cache_key(ENV, REQUEST) and meta["environment"]["l4t_version"] == "36.4.0"
    assert set(meta["engines"]) == {"vision", "llm_step"} and meta["request"]["precision"] == "fp16"
    stamp = (folder / METADATA).stat().st_mtime_ns
    for rebuild in (True, False):  # a current engine is used as it is, whatever the rebuild setting
        resolution = cache.resolve(ENV, REQUEST, rebuild=rebuild)
        assert (resolution.state, resolution.folder) == ("ready", folder)
    assert (folder / METADATA).stat().st_mtime_ns == stamp
    cache.validate(folder, ENV, REQUEST, hash_files=True)


def test_metadata_validation_catches_changed_missing_and_unreadable_files(tmp_path: Path):
    cache = EngineCache(tmp_path / "cache")
    folder = cache.write(ENV, REQUEST, _engines(tmp_path / "built"))
    engine = folder / "llm_step.engine"
    engine.write_bytes(engine.read_bytes()[::-1])  # same size, other bytes: only the sha256 check sees it
    cache.validate(folder, ENV, REQUEST)
    with pytest.raises(EngineCacheError, match="sha256 differs"):
        cache.validate(folder, ENV, REQUEST, hash_files=True)
    engine.write_bytes(b"truncated")
    with pytest.raises(EngineCacheError, match="size 9 differs"):
        cache.validate(folder, ENV, REQUEST)
    assert cache.resolve(ENV, REQUEST, rebuild=True).state == "build"
    engine.unlink()
    with pytest.raises(EngineCacheError, match="engine file missing"):
        cache.validate(folder, ENV, REQUEST)
    (folder / METADATA).write_text("{not json", encoding="utf-8")
    with pytest.raises(EngineCacheError, match="not valid JSON"):
        cache.validate(folder, ENV, REQUEST)
    (folder / METADATA).unlink()
    with pytest.raises(EngineCacheError, match="interrupted build"):
        cache.validate(folder, ENV, REQUEST)
    other = cache.write(ENV, REQUEST, _engines(tmp_path / "again"))
    with pytest.raises(EngineCacheError, match=r"stale engine: tensorrt_version '10\.3\.0' \(here '10\.7\.0'\)"):
        cache.validate(other, replace(ENV, tensorrt_version="10.7.0"), REQUEST)


def test_a_stale_engine_is_refused_with_what_differs_or_rebuilt_and_replaced(tmp_path: Path):
    cache = EngineCache(tmp_path / "cache")
    old = cache.write(ENV, REQUEST, _engines(tmp_path / "built"))
    upgraded = replace(ENV, tensorrt_version="10.7.0", cuda_version="12.8")
    with pytest.raises(EngineCacheError) as refused:
        cache.resolve(upgraded, REQUEST, rebuild=False)
    message = str(refused.value)
    assert "no TensorRT engine for model aaaaaaaaaaaaaaaa, precision fp16, profile agx_orin_64gb on Orin" in message
    assert (
        f"{old.name}: stale (tensorrt_version '10.3.0' (here '10.7.0'); cuda_version '12.6' (here '12.8'))" in message
    )
    assert message.endswith("rebuilding is off here: run vispeak-build-engine --format tensorrt")
    resolution = cache.resolve(upgraded, REQUEST, rebuild=True)
    assert resolution.state == "build" and resolution.stale == (old,) and resolution.folder != old
    new = cache.write(upgraded, REQUEST, _engines(tmp_path / "rebuilt"), replace=resolution.stale)
    assert new == resolution.folder and not old.exists()
    assert cache.resolve(upgraded, REQUEST, rebuild=False).state == "ready"


def test_a_foreign_engine_is_reported_and_kept(tmp_path: Path):
    cache = EngineCache(tmp_path / "cache")
    theirs = cache.write(ENV, REQUEST, _engines(tmp_path / "built"))
    here = Environment("NVIDIA H100 80GB HBM3", "9.0", "10.3.0", "12.6", None)
    with pytest.raises(EngineCacheError, match="foreign \\(gpu_name 'Orin' \\(here 'NVIDIA H100 80GB HBM3'\\)"):
        cache.resolve(here, REQUEST, rebuild=False)
    resolution = cache.resolve(here, REQUEST, rebuild=True)
    assert resolution.state == "build" and resolution.stale == ()
    cache.write(here, REQUEST, _engines(tmp_path / "ours"), replace=resolution.stale)
    assert theirs.is_dir() and len(cache.entries()) == 2


def test_engines_of_other_models_are_not_blamed_and_a_miss_says_so(tmp_path: Path):
    cache = EngineCache(tmp_path / "cache")
    cache.write(ENV, replace(REQUEST, model_checksum="f" * 64), _engines(tmp_path / "built"))
    with pytest.raises(EngineCacheError) as refused:
        cache.resolve(ENV, REQUEST, rebuild=False)
    assert "cached for this model" not in str(refused.value)
    assert cache.resolve(ENV, REQUEST, rebuild=True).reasons == ()


def test_list_and_clear(tmp_path: Path):
    root = tmp_path / "engines"
    cache = EngineCache(root / "tensorrt")
    lines: list[str] = []
    assert list_engines(root, lines.append) == 0 and lines == [f"no TensorRT engines under {cache.root}"]
    first = cache.write(ENV, REQUEST, _engines(tmp_path / "a"))
    other_model = replace(REQUEST, model_checksum="d" * 64, precision="fp32")
    second = cache.write(ENV, other_model, _engines(tmp_path / "b"))
    cache.update_metadata(first, gate={"accepted": True})
    cache.timing_cache_path(ENV).parent.mkdir(parents=True)
    cache.timing_cache_path(ENV).write_bytes(b"timing")
    (root / "tensorrt" / "broken").mkdir()
    lines.clear()
    list_engines(root, lines.append)
    assert len(lines) == 4 and lines[-1].startswith("3 engine set(s)")
    mine = next(line for line in lines if line.startswith(first.name))
    assert "model aaaaaaaaaaaaaaaa  fp16  agx_orin_64gb  Orin (sm 8.7) TensorRT 10.3.0 CUDA 12.6 L4T 36.4.0" in mine
    assert mine.endswith("gate accepted")
    assert any(line.startswith("broken  unreadable:") for line in lines)
    lines.clear()
    clear_engines(root, "d" * 16, lines.append)  # one model (and unreadable folders)
    assert not second.exists() and first.exists() and cache.timing_cache_path(ENV).exists()
    assert not (root / "tensorrt" / "broken").exists()
    clear_engines(root, None, lines.append)
    assert not first.exists() and not cache.timing_cache_path(ENV).exists()
    assert lines[-1].startswith("removed 2 folder(s) (all models)")


def test_tensorrt_older_than_10_is_refused_with_the_jetpack_to_use():
    from vispeak_ros.engines.engine_cache import tensorrt_version_problem

    assert tensorrt_version_problem("10.3.0") is None and tensorrt_version_problem("11.0.1") is None
    assert tensorrt_version_problem("8.6.2") == (
        "TensorRT 8.6.2 found; engines here need TensorRT 10 or later (JetPack 6.1+, or pip install tensorrt on a "
        "desktop)"
    )
    assert tensorrt_version_problem("unknown") is not None
