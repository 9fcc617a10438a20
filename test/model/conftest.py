"""Fixtures for the model tests: the official tiny reference (skipped when absent) and tiny random checkpoints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from modelkit import REFERENCE, Reference, write_checkpoint
from safetensors.torch import load_file

from vispeak_ros.model.vispeak import ViSpeakForCausalLM


@pytest.fixture(scope="session")
def reference() -> Reference:
    if not (REFERENCE / "reference_io.json").is_file():
        pytest.skip(f"official tiny reference not found at {REFERENCE.resolve()} (shared/ beside the repository)")
    meta = json.loads((REFERENCE / "reference_io.json").read_text())
    return Reference(REFERENCE, meta, load_file(str(REFERENCE / "reference_io.safetensors")))


@pytest.fixture(scope="session")
def official_model(reference: Reference) -> ViSpeakForCausalLM:
    from vispeak_ros.model import load_checkpoint

    return load_checkpoint(reference.model_dir)


@pytest.fixture(scope="session")
def official_user_embeds(reference: Reference, official_model: ViSpeakForCausalLM) -> torch.Tensor:
    """The 305 user-stream rows with frame and audio features filled in, computed by our model."""
    t = reference.tensors
    with torch.no_grad():
        images = official_model.encode_images(t["images_int8"].float() / 32.0)
        audio = official_model.encode_audio(t["audio_fbank"], t["audio_lengths"])
        return official_model.embed_user_stream(t["user_input_ids"], images, audio)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random checkpoint in the published layout (read-only: copy it before changing anything)."""
    from vispeak_ros.model.tiny import tiny_model

    return write_checkpoint(tiny_model(seed=3), tmp_path_factory.mktemp("tiny") / "ckpt")


@pytest.fixture
def tiny_copy(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny checkpoint that a test may break."""
    return Path(shutil.copytree(tiny_checkpoint, tmp_path / "ckpt"))
