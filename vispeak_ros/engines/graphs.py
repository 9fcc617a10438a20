"""The three exportable graphs, as torch modules over a loaded `ViSpeakForCausalLM`'s own weights.

- `VisionGraph`: preprocessed pixels [1, 3, S, S] -> frame tokens [1, 64, H] (tower, pixel shuffle, pooling,
  projector). The image resize/crop stays on the host (PIL), exactly as the torch backend does it.
- `AudioGraph`: fbank [1, F, 80] of one 1 s chunk (F = 98) + lengths [1] -> audio tokens [1, 12, H].
- `LLMStepGraph`: one streaming step. Inputs: user rows [T, H], agent rows [T, H] (the agent tokens' embeddings,
  gathered on the host from the embedding table), position ids [T] (explicit: the session's compacted positions)
  and, per layer, past keys/values [1, kv_heads, P, head_dim] (keys already rotated, as the torch cache stores
  them). Outputs: logits [T, V] (float32), informative logits [T] (float32, zeros without a head) and, per layer,
  the *new* keys/values [1, kv_heads, T, head_dim] that the host appends to its cache.

Design decisions (documented in the README): fusion and the informative head are *inside* the step graph (one call
per step, no host round trip between fusion, LLM and heads); the token embedding lookup is *outside* (a host
gather from `embeddings.safetensors`), because user text rows need it too and the table would otherwise be stored
twice; the cache's eviction and key re-rotation stay on the host (`SinkWindowCache` logic), so the graph needs no
notion of sink or window: P is bounded by the session (sink + window + segment margin).

The step graph is a plain re-statement of transformers' Qwen2 decoder (RMSNorm, RoPE, GQA attention with an explicit
causal mask over past + new rows, SwiGLU MLP) over the same parameters, written without cache objects so that
tracing gives one static, readable graph; `test/engines` checks it against the stock transformers model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vispeak_ros.model.vision import PIXEL_SHUFFLE_SCALE, pixel_shuffle
from vispeak_ros.model.vispeak import ViSpeakForCausalLM


class VisionGraph(nn.Module):
    """`model.encode_images` for one frame, with the token grid sizes as constants (tracing needs static sizes;
    the model's own helpers derive them from tensor shapes)."""

    def __init__(self, model: ViSpeakForCausalLM) -> None:
        super().__init__()
        if model.vision_tower is None:
            raise ValueError("this model has no vision tower to export")
        vision = model.config.vision
        self.tower, self.projector = model.vision_tower, model.mm_projector
        self.grid = vision.image_size // vision.patch_size
        self.width = vision.hidden_size
        self.pooling = model.config.pooling_size

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        tokens = self.tower(pixel_values)[:, 1:]
        grid = tokens.reshape(1, self.grid, self.grid, self.width) * PIXEL_SHUFFLE_SCALE
        shuffled = pixel_shuffle(grid, PIXEL_SHUFFLE_SCALE)  # [1, G/2, G/2, 4C]
        side, channels = self.grid // 2, 4 * self.width
        features = shuffled.reshape(1, side * side, channels)
        if self.pooling > 1:
            square = features.permute(0, 2, 1).reshape(1, channels, side, side)
            pooled = side // self.pooling
            square = F.interpolate(square, size=(pooled, pooled), mode="bilinear", align_corners=False)
            features = square.reshape(1, channels, pooled * pooled).permute(0, 2, 1)
        return self.projector(features)


class AudioGraph(nn.Module):
    def __init__(self, model: ViSpeakForCausalLM) -> None:
        super().__init__()
        if model.audio_encoder is None:
            raise ValueError("this model has no audio encoder to export")
        self.model = model

    def forward(self, fbank: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model.encode_audio(fbank, lengths)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LLMStepGraph(nn.Module):
    """Fusion + Qwen2 decoder over past/new rows + final norm + lm_head + informative head."""

    def __init__(self, model: ViSpeakForCausalLM) -> None:
        super().__init__()
        cfg = model.config.llm
        layer_types = getattr(cfg, "layer_types", None) or ["full_attention"] * cfg.num_hidden_layers
        if getattr(cfg, "use_sliding_window", False) or any(t != "full_attention" for t in layer_types):
            raise ValueError("the step graph supports full attention only (sliding-window layers are configured)")
        llm = model.llm.model
        self.fusion = model.fusion
        self.layers = llm.layers
        self.norm = llm.norm
        self.lm_head = model.llm.lm_head
        self.head = model.informative_head
        self.num_heads = cfg.num_attention_heads
        self.kv_heads = cfg.num_key_value_heads
        self.head_dim = llm.layers[0].self_attn.head_dim
        self.scaling = float(llm.layers[0].self_attn.scaling)
        self.rope_scale = float(llm.rotary_emb.attention_scaling)
        self.register_buffer("inv_freq", llm.rotary_emb.inv_freq.detach().float().clone(), persistent=False)

    def forward(
        self, user_embeds: torch.Tensor, agent_embeds: torch.Tensor, position_ids: torch.Tensor, *past: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        dtype = self.lm_head.weight.dtype
        x = self.fusion(agent_embeds.to(dtype), user_embeds.to(dtype))[None]  # [1, T, H]
        rows = x.shape[1]
        freqs = position_ids[:, None].float() * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = (emb.cos() * self.rope_scale).to(dtype)[None, None]
        sin = (emb.sin() * self.rope_scale).to(dtype)[None, None]
        past_len = past[0].shape[2]
        query_index = torch.arange(rows, device=x.device)[:, None] + past_len
        key_index = torch.arange(past_len + rows, device=x.device)[None, :]
        mask = torch.where(key_index <= query_index, 0.0, torch.finfo(torch.float32).min)  # [T, P + T]
        repeat = self.num_heads // self.kv_heads
        new: list[torch.Tensor] = []
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q = attn.q_proj(h).view(1, rows, self.num_heads, self.head_dim).transpose(1, 2)
            k = attn.k_proj(h).view(1, rows, self.kv_heads, self.head_dim).transpose(1, 2)
            v = attn.v_proj(h).view(1, rows, self.kv_heads, self.head_dim).transpose(1, 2)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            new += [k, v]
            keys = torch.cat([past[2 * i], k], dim=2).repeat_interleave(repeat, dim=1)
            values = torch.cat([past[2 * i + 1], v], dim=2).repeat_interleave(repeat, dim=1)
            scores = torch.matmul(q, keys.transpose(2, 3)).float() * self.scaling + mask
            probs = torch.softmax(scores, dim=-1).to(dtype)
            out = torch.matmul(probs, values).transpose(1, 2).reshape(1, rows, self.num_heads * self.head_dim)
            x = x + attn.o_proj(out)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        hidden = self.norm(x)[0]
        logits = self.lm_head(hidden).float()
        informative = self.head(hidden) if self.head is not None else hidden[:, 0].float() * 0.0
        return (logits, informative, *new)
