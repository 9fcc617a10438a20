"""A KV cache with an attention sink and a sliding window, whose retained keys are re-rotated, not recomputed.

transformers 5.x has no SinkCache; this is a `DynamicCache` that can drop a span of positions. Keys are stored
after RoPE, so a key cached at position p carries the rotation R(p). When a span of `count` positions before it is
dropped, the key must look as if it sat at p - count: RoPE rotations compose, R(p - count) = R(-count) R(p), so
the key is multiplied by R(-count) in place of a recompute. Values carry no position and are only sliced.
Queries are rotated by the model at their own (compacted) positions, so every attention score keeps its
relative distance inside the retained window.
"""

from __future__ import annotations

import torch
from transformers import PretrainedConfig
from transformers.cache_utils import DynamicCache
from transformers.models.qwen2.modeling_qwen2 import rotate_half  # the pairing the keys were rotated with


def rerotate_keys(keys: torch.Tensor, shift: int, inv_freq: torch.Tensor) -> torch.Tensor:
    """Keys [..., T, D] rotated at positions p -> the same keys rotated at p + shift (shift may be negative).

    The angle is computed in float64 so a shift of thousands of positions adds no more error than one rotation.
    """
    angle = shift * inv_freq.to(device=keys.device, dtype=torch.float64)
    emb = torch.cat((angle, angle), dim=-1)
    cos, sin = emb.cos().to(torch.float32), emb.sin().to(torch.float32)
    k = keys.to(torch.float32)
    return (k * cos + rotate_half(k) * sin).to(keys.dtype)


class SinkWindowCache(DynamicCache):
    """`DynamicCache` plus `drop(start, count)`: remove positions [start, start + count) from every layer."""

    def __init__(self, config: PretrainedConfig, inv_freq: torch.Tensor) -> None:
        super().__init__(config=config)
        self.inv_freq = inv_freq.detach().clone()

    def drop(self, start: int, count: int) -> None:
        if count <= 0:
            return
        length = self.get_seq_length()
        if start < 0 or start + count > length:
            raise ValueError(f"cannot drop [{start}, {start + count}) from a cache of {length} positions")
        for layer in self.layers:
            if not getattr(layer, "is_initialized", False):
                continue
            keys, values = layer.keys, layer.values
            tail = rerotate_keys(keys[..., start + count :, :], -count, self.inv_freq)
            layer.keys = torch.cat([keys[..., :start, :], tail], dim=-2)
            layer.values = torch.cat([values[..., :start, :], values[..., start + count :, :]], dim=-2)
