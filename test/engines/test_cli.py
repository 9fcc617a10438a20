"""`vispeak-build-engine --format onnx`: export, up-to-date detection, the INT8 variant and its gate verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vispeak_ros.engines.cli import main
from vispeak_ros.runtime.backends.artifacts import default_onnx_dir, model_checksum, read_manifest
from vispeak_ros.runtime.backends.factory import BackendUnavailable, create_backend
from vispeak_ros.runtime.config import RuntimeConfig


def test_export_then_up_to_date_then_int8_with_gate(tmp_path: Path, capsys):
    from vispeak_ros.data import demo_checkpoint

    assert main(["--format", "onnx", "--engine-dir", str(tmp_path)]) == 0
    folder = default_onnx_dir(model_checksum(demo_checkpoint()), tmp_path)
    first = capsys.readouterr().out
    assert "onnx.checker ok" in first and "onnxruntime CPU vs torch" in first
    stamp = (folder / "llm_step.onnx").stat().st_mtime_ns
    gate = ["--int8", "--gate-scenarios", "interrupt"]
    assert main(["--format", "onnx", "--engine-dir", str(tmp_path), *gate]) == 0
    out = capsys.readouterr().out
    assert "up to date" in out and "gate: accepted" in out
    assert (folder / "llm_step.onnx").stat().st_mtime_ns == stamp  # not exported again
    variant = read_manifest(folder)["variants"]["int8"]
    assert variant["file"] == "llm_step.int8.onnx" and variant["gate"]["accepted"]
    assert variant["gate"]["streams"] == 1 and variant["gate"]["trigger_agreement"] >= 0.98
    # the runtime loads the INT8 step only while the manifest says the gate accepted it
    config = RuntimeConfig(backend="onnxruntime", engine_dir=str(tmp_path), ort_provider="cpu", engine_precision="int8")
    assert create_backend(config).step_file == "llm_step.int8.onnx"
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["variants"]["int8"]["gate"]["accepted"] = False
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackendUnavailable, match="did not pass the agreement gate"):
        create_backend(config)


def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, capsys):
    assert main(["--format", "onnx", "--checkpoint", str(tmp_path / "missing"), "--output", str(tmp_path)]) == 2
    assert "checkpoint folder not found" in capsys.readouterr().err
    assert main(["--format", "onnx", "--int8", "--gate-scenarios", "dance"]) == 2
    assert "unknown ['dance']" in capsys.readouterr().err
