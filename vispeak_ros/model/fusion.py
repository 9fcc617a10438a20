"""Two-stream fusion: the agent stream and the user stream become one `inputs_embeds` row per position.

Variants (config key `combination`):
- `adaptive_combine` (ViSpeak): gate Linear(2H -> H) -> ReLU -> Linear(H -> 1) on cat[agent, user];
  w = sigmoid(gate); fused = w * agent + (1 - w) * user.
- `linear_combine`: Linear(2H -> H, no bias) on cat[agent, user] (initialised by the authors to pass the agent).
- `add`: (agent + user) / 2.

Fusion order (a quirk of the official code, decided here): training and every per-token decode step use
[agent, user] with the agent weighted by sigmoid(gate); only the official streaming prefill swaps them
([user, agent], the user weighted by sigmoid(gate)). The trained order is [agent, user] and it is the default
everywhere. `order="user_first"` exists only for parity with the official streaming prefill (the reference's
`*_stream_prefix_order` tensors); nothing uses it unless asked explicitly.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from vispeak_ros.model.errors import CheckpointError

FusionOrder = Literal["agent_first", "user_first"]
FUSION_ORDERS = ("agent_first", "user_first")


class StreamFusion(nn.Module):
    """Holds the fusion weights (`gate`, loaded from the checkpoint's `model.combination.*`)."""

    def __init__(self, combination: str, hidden_size: int) -> None:
        super().__init__()
        self.combination = combination
        if combination == "adaptive_combine":
            self.gate: nn.Module | None = nn.Sequential(
                nn.Linear(2 * hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1)
            )
        elif combination == "linear_combine":
            self.gate = nn.Linear(2 * hidden_size, hidden_size, bias=False)
        elif combination == "add":
            self.gate = None
        else:
            raise CheckpointError(f"combination {combination!r} is not adaptive_combine, linear_combine or add")

    @staticmethod
    def _operands(agent: torch.Tensor, user: torch.Tensor, order: FusionOrder) -> tuple[torch.Tensor, torch.Tensor]:
        if order == "agent_first":
            return agent, user
        if order == "user_first":
            return user, agent
        raise ValueError(f"fusion order {order!r} is not one of {FUSION_ORDERS}")

    def gate_logit(self, agent: torch.Tensor, user: torch.Tensor, order: FusionOrder = "agent_first") -> torch.Tensor:
        """The adaptive gate before the sigmoid, [..., 1] (adaptive_combine only)."""
        if self.combination != "adaptive_combine":
            raise ValueError(f"gate_logit exists only for adaptive_combine, not {self.combination}")
        first, second = self._operands(agent, user, order)
        return self.gate(torch.cat([first, second], dim=-1))

    def forward(self, agent: torch.Tensor, user: torch.Tensor, order: FusionOrder = "agent_first") -> torch.Tensor:
        first, second = self._operands(agent, user, order)
        if self.combination == "add":
            return (first + second) / 2
        mixed = self.gate(torch.cat([first, second], dim=-1))
        if self.combination == "linear_combine":
            return mixed
        weight = torch.sigmoid(mixed)
        return first * weight + second * (1 - weight)
