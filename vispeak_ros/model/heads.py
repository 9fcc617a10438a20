"""The informative head: how likely the current frame holds something worth speaking about.

Linear(H -> H/2, bias) -> ReLU -> Linear(H/2 -> 1, no bias) on the final normed hidden states. The position that
matters is the last visual token of each frame (the token right before that frame's seg token).
"""

from __future__ import annotations

import torch
from torch import nn


class InformativeHead(nn.Sequential):
    """Keys `0.*` and `2.weight`, as the checkpoint's top-level `informative_head.*`."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__(
            nn.Linear(hidden_size, hidden_size // 2), nn.ReLU(), nn.Linear(hidden_size // 2, 1, bias=False)
        )

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """[..., H] -> [...] logits (float32, as the official code returns them)."""
        return super().forward(hidden).squeeze(-1).float()
