"""VITA-1.5 "whale" audio encoder and its adapter: 80-dim fbank frames -> LLM tokens (12 per 1 s chunk).

Written directly from the encoder's published structure. Attribute names follow the checkpoint
(`encoder.global_cmvn`, `encoder.enc.0.core.{conv,out}`, `encoder.enc.1.{embed,encoders.N,after_norm}`,
`adpter.{conv1d2,bn2,project}` - the "adpter" spelling is the checkpoint's) so weights load by name.

Path: global CMVN -> Conv2d subsampling x4 -> transformer (pre-norm, abs or rel positional encoding, chunk mask)
-> adapter (right pad kernel-1, Conv1d stride 2, norm, activation, Linear to the LLM width).
Deterministic by design: the official encoder draws a random dynamic-chunk mask on every forward when
`transformer-dynamic-chunks` is on, even in eval mode. Here the mask is always the static one from train.yaml
(chunk_size with left_chunks, the same layout the encoder's own streaming path uses), or full attention when
chunk_size <= 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vispeak_ros.model.config import AudioConfig
from vispeak_ros.model.errors import CheckpointError

MASK_FILL = float(torch.finfo(torch.float16).min)  # the value the official attention fills masked scores with


class GlobalCMVN(nn.Module):
    """(x - mean) * istd; the buffers are stored in the checkpoint."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("istd", torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.istd


class Conv2dSubsampling4(nn.Module):
    """Two 3x3 stride-2 convolutions over (time, frequency), then a Linear over channels x frequency."""

    def __init__(self, idim: int, odim: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, odim, 3, 2), nn.ReLU(), nn.Conv2d(odim, odim, 3, 2), nn.ReLU())
        self.out = nn.Sequential(nn.Linear(odim * (((idim - 1) // 2 - 1) // 2), odim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv(x.unsqueeze(1))
        b, c, t, f = x.shape
        x = self.out(x.transpose(1, 2).reshape(b, t, c * f))
        return x, mask[:, :, 2::2][:, :, 2::2]


class Subsampling(nn.Module):
    def __init__(self, cfg: AudioConfig) -> None:
        super().__init__()
        if cfg.subsampling_rate != 4:
            raise CheckpointError(f"audio setting subsampling-rate {cfg.subsampling_rate} is not 4")
        self.core = Conv2dSubsampling4(cfg.input_dim, cfg.subsampling_output_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.core(x, mask)


def sinusoid_table(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(...), float32, [1, length, dim]."""
    position = torch.arange(length, dtype=torch.float32, device=device).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * -(math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)
    return table.unsqueeze(0)


def chunk_mask(size: int, chunk: int, left_chunks: int, device: torch.device) -> torch.Tensor:
    """[size, size] bool: frame i sees its own chunk and `left_chunks` chunks before it (all before if < 0)."""
    idx = torch.arange(size, device=device)
    chunk_of = idx // chunk
    end = torch.clamp((chunk_of + 1) * chunk, max=size)
    start = torch.zeros_like(idx) if left_chunks < 0 else torch.clamp((chunk_of - left_chunks) * chunk, min=0)
    cols = idx.unsqueeze(0)
    return (cols >= start.unsqueeze(1)) & (cols < end.unsqueeze(1))


class MultiHeadedAttention(nn.Module):
    def __init__(self, cfg: AudioConfig) -> None:
        super().__init__()
        dim, heads = cfg.attention_dim, cfg.attention_heads
        if dim % heads:
            raise CheckpointError(f"audio setting transformer-attention-heads {heads} does not divide {dim}")
        self.h, self.d_k = heads, dim // heads
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.linear_out = nn.Linear(dim, dim)
        self.rel_enc = cfg.pos_enc_class == "rel-enc"
        if self.rel_enc:
            self.linear_pos = nn.Linear(dim, dim, bias=False)
            self.pos_bias_u = nn.Parameter(torch.zeros(heads, self.d_k))
            self.pos_bias_v = nn.Parameter(torch.zeros(heads, self.d_k))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pos_emb: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        q = self.linear_q(x).view(b, -1, self.h, self.d_k)
        k = self.linear_k(x).view(b, -1, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(x).view(b, -1, self.h, self.d_k).transpose(1, 2)
        if self.rel_enc:
            p = self.linear_pos(pos_emb.to(x.dtype)).view(pos_emb.shape[0], -1, self.h, self.d_k).transpose(1, 2)
            ac = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
            bd = torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1))  # no rel_shift, as trained
            scores = (ac + bd) / math.sqrt(self.d_k)
        else:
            scores = torch.matmul(q.transpose(1, 2), k.transpose(-2, -1)) / math.sqrt(self.d_k)
        masked = ~mask.unsqueeze(1)  # [B, 1, T, T]
        attn = torch.softmax(scores.masked_fill(masked, MASK_FILL), dim=-1).masked_fill(masked, 0.0)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, -1, self.h * self.d_k)
        return self.linear_out(out)


class PositionwiseFeedForward(nn.Module):
    def __init__(self, dim: int, units: int) -> None:
        super().__init__()
        self.w_1 = nn.Linear(dim, units)
        self.w_2 = nn.Linear(units, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(torch.relu(self.w_1(x)))


class TransformerLayer(nn.Module):
    def __init__(self, cfg: AudioConfig) -> None:
        super().__init__()
        dim = cfg.attention_dim
        self.self_attn = MultiHeadedAttention(cfg)
        self.feed_forward = PositionwiseFeedForward(dim, cfg.linear_units)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.normalize_before = cfg.normalize_before
        self.concat_after = cfg.concat_after
        if cfg.concat_after:
            self.concat_linear = nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pos_emb: torch.Tensor) -> torch.Tensor:
        residual = x
        if self.normalize_before:
            x = self.norm1(x)
        att = self.self_attn(x, mask, pos_emb)
        x = residual + (self.concat_linear(torch.cat([x, att], dim=-1)) if self.concat_after else att)
        if not self.normalize_before:
            x = self.norm1(x)
        residual = x
        if self.normalize_before:
            x = self.norm2(x)
        x = residual + self.feed_forward(x)
        if not self.normalize_before:
            x = self.norm2(x)
        return x


class Transformer(nn.Module):
    def __init__(self, cfg: AudioConfig) -> None:
        super().__init__()
        if cfg.input_layer != "linear":
            raise CheckpointError(f"audio setting transformer-input-layer {cfg.input_layer!r} is not 'linear'")
        if cfg.pos_enc_class not in ("abs-enc", "rel-enc"):
            raise CheckpointError(f"audio setting transformer-pos-enc-class {cfg.pos_enc_class!r} is not abs/rel-enc")
        dim = cfg.attention_dim
        self.dim = dim
        self.rel_enc = cfg.pos_enc_class == "rel-enc"
        self.chunk_size, self.left_chunks = cfg.chunk_size, cfg.left_chunks
        self.embed = nn.Sequential(
            nn.Linear(cfg.transformer_input_dim, dim), nn.LayerNorm(dim), nn.Dropout(0.0), nn.ReLU()
        )
        self.encoders = nn.ModuleList(TransformerLayer(cfg) for _ in range(cfg.num_blocks))
        self.normalize_before = cfg.normalize_before
        if cfg.normalize_before:
            self.after_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, T, D], mask [B, 1, T] (True = valid frame)."""
        t = x.shape[1]
        att_mask = mask.expand(-1, t, -1)
        if self.chunk_size > 0:
            att_mask = att_mask & chunk_mask(t, self.chunk_size, self.left_chunks, x.device).unsqueeze(0)
        x = self.embed(x)
        pos_emb = sinusoid_table(t, self.dim, x.device).to(x.dtype)
        x = x * math.sqrt(self.dim)
        if not self.rel_enc:
            x = x + pos_emb
        for layer in self.encoders:
            x = layer(x, att_mask, pos_emb)
        return self.after_norm(x) if self.normalize_before else x


class WhaleEncoder(nn.Module):
    def __init__(self, cfg: AudioConfig) -> None:
        super().__init__()
        self.global_cmvn = GlobalCMVN(cfg.input_dim)
        self.enc = nn.ModuleList([Subsampling(cfg), Transformer(cfg)])

    def forward(self, fbank: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = fbank.shape[1]
        mask = (torch.arange(t, device=fbank.device).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(1)
        x = self.global_cmvn(fbank)
        x, mask = self.enc[0](x, mask)
        return self.enc[1](x, mask), mask


class CNNSubsampling(nn.Module):
    """The "subsampling" adapter: stride-2 Conv1d (kernel 5, right-padded), norm, activation, Linear.

    A first stride-1 conv (left-padded) exists only when enc_out_dim * 4 < llm_embed_dim, as in the original.
    """

    def __init__(self, cfg: AudioConfig) -> None:
        super().__init__()
        enc, llm, k = cfg.enc_out_dim, cfg.llm_embed_dim, cfg.kernel_size
        self.kernel_size = k
        self.two_convs = enc * 4 < llm
        width = enc
        if self.two_convs:
            self.conv1d1 = nn.Conv1d(enc, 2 * enc, k, 1, 0)
            self.bn1 = nn.BatchNorm1d(2 * enc, eps=1e-3, momentum=0.99)
            width = 2 * enc
        self.conv1d2 = nn.Conv1d(width, 2 * width, k, 2, 0)
        if cfg.norm == "batch":
            self.bn2: nn.Module = nn.BatchNorm1d(2 * width, eps=1e-3, momentum=0.99)
        elif cfg.norm == "layer":
            self.bn2 = nn.LayerNorm(2 * width, eps=1e-3)
        else:
            raise CheckpointError(f"audio setting model_conf.norm {cfg.norm!r} is not batch or layer")
        self.act = nn.GELU() if cfg.activation == "gelu" else nn.ReLU()
        self.project = nn.Linear(2 * width, llm)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.transpose(1, 2).masked_fill(~mask, 0.0)
        if self.two_convs:
            x = torch.relu(self.bn1(self.conv1d1(F.pad(x, (self.kernel_size - 1, 0)))))
        x = self.conv1d2(F.pad(x, (0, self.kernel_size - 1)))
        x = self.bn2(x.transpose(1, 2)).transpose(1, 2) if isinstance(self.bn2, nn.LayerNorm) else self.bn2(x)
        x = self.act(x)
        return self.project(x.transpose(1, 2)), mask[:, :, 0::2]


class WhaleAudioEncoder(nn.Module):
    """fbank [B, F, 80] + lengths [B] -> (features [B, T', H], mask [B, T']) with T' = 12 for 1 s of audio."""

    def __init__(self, cfg: AudioConfig) -> None:
        super().__init__()
        if cfg.adapter_type != "subsampling":
            raise CheckpointError(f"audio setting model_conf.adpter_type {cfg.adapter_type!r} is not 'subsampling'")
        self.config = cfg
        self.encoder = WhaleEncoder(cfg)
        self.adpter = CNNSubsampling(cfg)

    def forward(self, fbank: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = self.adpter.project.weight.dtype
        hidden, mask = self.encoder(fbank.to(dtype), lengths.to(fbank.device))
        features, mask = self.adpter(hidden, mask)
        return features, mask.squeeze(1)


def tokens_for_frames(num_frames: int) -> int:
    """LLM tokens the encoder makes of `num_frames` fbank frames (the official processor's count)."""
    return len(range(num_frames)[2::2][2::2][0::2])
