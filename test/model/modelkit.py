"""Helpers shared by the model tests: the official tiny reference and a writer for tiny checkpoints.

(Not in conftest.py, so that tests can import them without clashing with other folders' conftest modules.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vispeak_ros.model.tokenizer import SpecialTokens
from vispeak_ros.model.vispeak import ViSpeakForCausalLM
from vispeak_ros.model.writer import save_checkpoint

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
REFERENCE = SHARED / "reference" / "official_tiny"
TOL = 1e-4


def close(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """Equal shapes, values within TOL (absolute and relative)."""
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours.float(), theirs.float(), atol=TOL, rtol=TOL)


@dataclass
class Reference:
    """The official code's outputs on its tiny checkpoint (reference_io.json + reference_io.safetensors)."""

    root: Path
    meta: dict
    tensors: dict[str, torch.Tensor]

    @property
    def model_dir(self) -> Path:
        return self.root / "tiny_model"

    def tokens(self) -> SpecialTokens:
        ids = self.meta["token_ids"]
        return SpecialTokens(
            seg=ids["seg_token_chosen"],
            pad=ids["pad_chosen"],
            im_end=ids["im_end_stop"],
            proactive=ids["proactive_forced_first_token"],
        )


def write_checkpoint(model: ViSpeakForCausalLM, root: Path, *, config_extra: dict | None = None) -> Path:
    """Save a model in the published layout (the package's own writer)."""
    return save_checkpoint(model, root, config_extra=config_extra)
