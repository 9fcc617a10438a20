"""InternViT-300M-448px tower, pixel shuffle, pooling and projector: 448x448 pixels -> 64 LLM tokens per frame.

Written directly (no remote code). Attribute names follow the published weights (`embeddings.*`,
`encoder.layers.N.{attn.qkv, attn.proj, mlp.fc1, mlp.fc2, norm1, norm2, ls1, ls2}`) so they load by name.
The path, as the official tower computes it: last layer's hidden states (no post-norm), CLS dropped, x0.5,
pixel shuffle 0.5 (32x32x1024 -> 16x16x4096), bilinear resize to 16/pooling per side, then the projector.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN
from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm as RMSNorm  # InternViT's RMSNorm, same formula

from vispeak_ros.model.config import VisionConfig
from vispeak_ros.model.errors import CheckpointError

PIXEL_SHUFFLE_SCALE = 0.5  # the official tower multiplies the features by this before the shuffle, too


def _norm(cfg: VisionConfig, size: int) -> nn.Module:
    if cfg.norm_type == "layer_norm":
        return nn.LayerNorm(size, eps=cfg.layer_norm_eps)
    if cfg.norm_type == "rms_norm":
        return RMSNorm(size, cfg.layer_norm_eps)
    raise CheckpointError(f"vision setting norm_type {cfg.norm_type!r} is not layer_norm or rms_norm")


class InternVisionEmbeddings(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.grid = cfg.image_size // cfg.patch_size
        self.class_embedding = nn.Parameter(torch.zeros(1, 1, cfg.hidden_size))
        self.patch_embedding = nn.Conv2d(3, cfg.hidden_size, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.position_embedding = nn.Parameter(torch.zeros(1, self.grid * self.grid + 1, cfg.hidden_size))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(pixel_values.to(self.patch_embedding.weight.dtype))
        n, c, h, w = patches.shape
        if (h, w) != (self.grid, self.grid):
            raise ValueError(f"pixel_values give a {h}x{w} patch grid; this tower expects {self.grid}x{self.grid}")
        patches = patches.flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(n, 1, c).to(patches.dtype)
        return torch.cat([cls, patches], dim=1) + self.position_embedding.to(patches.dtype)


class InternAttention(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size, bias=cfg.qkv_bias)
        self.proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.qk_normalization = cfg.qk_normalization
        if cfg.qk_normalization:
            self.q_norm = RMSNorm(cfg.hidden_size, cfg.layer_norm_eps)
            self.k_norm = RMSNorm(cfg.hidden_size, cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, c).unbind(2)
        if self.qk_normalization:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class InternMLP(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = ACT2FN[cfg.hidden_act]
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class InternVisionLayer(nn.Module):
    """Pre-norm block with InternViT's layer scale (ls1, ls2) on both residual branches."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.attn = InternAttention(cfg)
        self.mlp = InternMLP(cfg)
        self.norm1 = _norm(cfg, cfg.hidden_size)
        self.norm2 = _norm(cfg, cfg.hidden_size)
        self.ls1 = nn.Parameter(torch.ones(cfg.hidden_size))
        self.ls2 = nn.Parameter(torch.ones(cfg.hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x)) * self.ls1
        return x + self.mlp(self.norm2(x)) * self.ls2


class InternVisionEncoder(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(InternVisionLayer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class InternVisionModel(nn.Module):
    """The tower. Returns the last layer's hidden states [N, 1 + grid^2, C] (CLS first, no post-norm)."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embeddings = InternVisionEmbeddings(cfg)
        self.encoder = InternVisionEncoder(cfg)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.embeddings(pixel_values))


def pixel_shuffle(x: torch.Tensor, scale: float = 0.5) -> torch.Tensor:
    """[N, W, H, C] -> [N, W*scale, H*scale, C/scale^2], in the exact memory order of the official tower."""
    n, w, h, c = x.shape
    x = x.reshape(n, w, int(h * scale), int(c / scale)).permute(0, 2, 1, 3)
    x = x.reshape(n, int(h * scale), int(w * scale), int(c / (scale * scale)))
    return x.permute(0, 2, 1, 3).contiguous()


def shuffled_features(hidden: torch.Tensor) -> torch.Tensor:
    """Tower hidden states [N, 1+G^2, C] -> [N, (G/2)^2, 4C]: drop CLS, x0.5, pixel shuffle."""
    tokens = hidden[:, 1:]
    n, count, c = tokens.shape
    side = round(count**0.5)
    grid = tokens.reshape(n, side, side, c) * PIXEL_SHUFFLE_SCALE
    shuffled = pixel_shuffle(grid, PIXEL_SHUFFLE_SCALE)
    return shuffled.reshape(n, -1, shuffled.shape[-1])


def pool_tokens(features: torch.Tensor, pooling_size: int) -> torch.Tensor:
    """Bilinear resize (align_corners False) of the square token grid by 1/pooling_size per side."""
    if pooling_size <= 1:
        return features
    n, count, c = features.shape
    side = round(count**0.5)
    grid = features.permute(0, 2, 1).reshape(n, c, side, side)
    grid = F.interpolate(grid, size=(side // pooling_size, side // pooling_size), mode="bilinear", align_corners=False)
    return grid.reshape(n, c, -1).permute(0, 2, 1)


def build_projector(projector_type: str, in_dim: int, hidden: int) -> nn.Module:
    """`linear` or `mlp{N}x_gelu` as in LLaVA/VITA; keys `0, 2, ...` as the published checkpoint names them."""
    if projector_type == "linear":
        return nn.Linear(in_dim, hidden)
    match = re.fullmatch(r"mlp(\d+)x_gelu", projector_type)
    if not match:
        raise CheckpointError(f"mm_projector_type {projector_type!r} is not 'linear' or 'mlpNx_gelu'")
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden)]
    for _ in range(1, int(match.group(1))):
        layers += [nn.GELU(), nn.Linear(hidden, hidden)]
    return nn.Sequential(*layers)
