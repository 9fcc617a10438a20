"""Fixtures for the engine tests: the demo model and one ONNX export of it in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_model():
    from vispeak_ros.data import demo_checkpoint
    from vispeak_ros.model import load_checkpoint

    return load_checkpoint(demo_checkpoint())


@pytest.fixture(scope="session")
def demo_export(demo_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vispeak_ros.data import demo_checkpoint
    from vispeak_ros.engines.export import export_onnx, model_checksum

    folder = tmp_path_factory.mktemp("onnx") / "demo"
    export_onnx(demo_model, folder, checksum=model_checksum(demo_checkpoint()))
    return folder
