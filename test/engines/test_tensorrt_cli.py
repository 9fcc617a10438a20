"""`vispeak-build-engine --format tensorrt | --list | --clear`: the parts that run without TensorRT, for real.

Without the `tensorrt` package the build is refused with one line and exit 2 before anything is exported (also
through `scripts/vispeak-build-engine`, what `ros2 run` starts). `--list` and `--clear` read and remove a real cache
folder whose metadata `engine_cache` itself wrote (the cache never parses engine files, so plain bytes stand in for
them). Options of another action are refused, not ignored. Building itself: test_tensorrt_engine.py (GPU only).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vispeak_ros.engines.cli import locate_export, main
from vispeak_ros.engines.engine_cache import BuildRequest, EngineCache, Environment
from vispeak_ros.runtime.backends.artifacts import ArtifactError, model_checksum

REPO_ROOT = Path(__file__).resolve().parents[2]
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
without_tensorrt = pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is installed here: the refusal does not apply")
ORIN = Environment("Orin", "8.7", "10.3.0", "12.6", "36.4.0")


def _request(checksum: str, precision: str = "fp16") -> BuildRequest:
    return BuildRequest(
        model_checksum=checksum,
        graphs={"llm_step": "c" * 64},
        precision=precision,
        device_profile="agx_orin_64gb",
        profile_shapes={"llm_step": {"segment": {"user_embeds": [[1, 64], [65, 64], [256, 64]]}}},
        build_flags={"llm_step": {"flags": ["FP16"], "workspace_mb": 4096}},
    )


def _cache_with_two_models(root: Path, demo_checksum: str) -> tuple[EngineCache, Path, Path]:
    cache = EngineCache(root / "tensorrt")
    built = []
    for checksum in (demo_checksum, "d" * 64):
        engine = root / "staging" / checksum[:8] / "llm_step.engine"
        engine.parent.mkdir(parents=True)
        engine.write_bytes(b"serialized engine bytes " + checksum.encode())
        built.append(cache.write(ORIN, _request(checksum), {"llm_step": engine}, extra={"profile": "agx_orin_64gb"}))
    cache.update_metadata(built[0], gate={"accepted": True})
    return cache, built[0], built[1]


def _script(*args: str) -> subprocess.CompletedProcess:
    """The `ros2 run vispeak_ros vispeak-build-engine` executable, run as a process."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "vispeak-build-engine"), *args],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip


@without_tensorrt
def test_tensorrt_build_without_tensorrt_is_one_line_and_exit_2_before_any_export(tmp_path: Path, capsys):
    assert main(["--format", "tensorrt", "--engine-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vispeak-build-engine: error: tensorrt not installed (tensorrt): JetPack ships it; "
                   "on a desktop pip install tensorrt"]  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # nothing exported, nothing cached


@without_tensorrt
def test_the_ros2_run_executable_refuses_the_same_way(tmp_path: Path):
    result = _script("--format", "tensorrt", "--precision", "fp16", "--engine-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "vispeak-build-engine: error: tensorrt not installed (tensorrt): JetPack ships it; on a desktop pip install "
        "tensorrt"
    ]
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


def test_list_shows_each_cached_engine_set_with_its_target_and_gate(tmp_path: Path, capsys):
    from vispeak_ros.data import demo_checkpoint

    demo = model_checksum(demo_checkpoint())
    _, ours, theirs = _cache_with_two_models(tmp_path, demo)
    assert main(["--list", "--engine-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[-1].startswith("2 engine set(s), ")
    assert lines[-1].endswith(f"MB under {tmp_path / 'tensorrt'}")
    mine = next(line for line in lines if line.startswith(ours.name))
    assert f"model {demo[:16]}  fp16  agx_orin_64gb  Orin (sm 8.7) TensorRT 10.3.0 CUDA 12.6 L4T 36.4.0" in mine
    assert mine.endswith("gate accepted")
    assert next(line for line in lines if line.startswith(theirs.name)).endswith("gate -")
    result = _script("--list", "--engine-dir", str(tmp_path))  # needs no TensorRT, also as a process
    assert result.returncode == 0 and result.stdout.splitlines() == lines


def test_clear_with_a_checkpoint_removes_only_that_models_engines_then_clear_removes_all(tmp_path: Path, capsys):
    from vispeak_ros.data import demo_checkpoint

    demo = model_checksum(demo_checkpoint())
    cache, ours, theirs = _cache_with_two_models(tmp_path, demo)
    timing = cache.timing_cache_path(ORIN)
    timing.parent.mkdir(parents=True)
    timing.write_bytes(b"timing cache")
    assert main(["--clear", "--checkpoint", str(demo_checkpoint()), "--engine-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f"removed 1 folder(s) (model {demo[:16]}): {ours.name}"
    assert not ours.exists() and theirs.is_dir() and timing.is_file()  # the timing cache serves every model
    assert main(["--clear", "--engine-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("removed 2 folder(s) (all models)")
    assert not theirs.exists() and not timing.exists() and cache.entries() == []
    assert main(["--list", "--engine-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f"no TensorRT engines under {tmp_path / 'tensorrt'}"


def test_an_export_is_found_by_checkpoint_file_stats_without_hashing(tmp_path: Path):
    """The manifest's recorded file stats identify the checkpoint (its checksum is taken from the manifest), so a
    build before every launch costs no 15 GB hash; a checkpoint without an export is hashed."""
    import json

    from vispeak_ros.runtime.backends.artifacts import FORMAT_VERSION, checkpoint_stats, default_onnx_dir

    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    checksum, out, current = locate_export(checkpoint, None, tmp_path / "engines")
    assert (checksum, out, current) == (model_checksum(checkpoint), default_onnx_dir(checksum, tmp_path / "engines"),
                                        False)  # fmt: skip
    out.mkdir(parents=True)
    recorded = {"format": FORMAT_VERSION, "model_checksum": "f" * 64, "checkpoint_files": checkpoint_stats(checkpoint)}
    (out / "manifest.json").write_text(json.dumps(recorded))
    assert locate_export(checkpoint, None, tmp_path / "engines") == ("f" * 64, out, True)  # not hashed: "f" * 64
    (checkpoint / "model.safetensors").write_bytes(b"other weights")  # changed: hashed, no longer this export
    changed = model_checksum(checkpoint)
    assert locate_export(checkpoint, None, tmp_path / "engines") == (changed, out.parent / changed[:16], False)
    with pytest.raises(ArtifactError, match="checkpoint folder not found"):
        locate_export(tmp_path / "missing", None, tmp_path / "engines")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--list", "--precision", "fp16"], "--precision does not apply to --list"),
        (["--clear", "--output", "x"], "--output does not apply to --clear"),
        (["--format", "onnx", "--profile", "agx_orin_64gb"], "--profile does not apply to --format onnx"),
        (["--format", "onnx", "--no-rebuild"], "--no-rebuild does not apply to --format onnx"),
        (["--format", "tensorrt", "--int8"], "--int8 does not apply to --format tensorrt; use --precision int8"),
        (["--format", "tensorrt", "--window-segments", "0"], "--window-segments must be in [1, 3600], got 0"),
    ],
)
def test_options_of_another_action_are_refused_with_one_line(argv: list[str], message: str, tmp_path: Path, capsys):
    assert main([*argv, "--engine-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"vispeak-build-engine: error: {message}"]
    assert list(tmp_path.iterdir()) == []


def test_an_action_is_required_and_actions_exclude_each_other(capsys):
    for argv in ([], ["--list", "--clear"], ["--format", "tensorrt", "--list"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
    assert "one of the arguments --format --list --clear is required" in capsys.readouterr().err
