"""ViSpeak: encoders + two-stream fusion + a stock transformers Qwen2 fed with `inputs_embeds` + informative head.

The LLM is an unmodified `Qwen2ForCausalLM`; ViSpeak's differences live outside it: the user stream is embedded
(placeholders filled with frame/audio features), fused position by position with the agent stream, and the fused
rows go in as `inputs_embeds` with positions 0..T-1. The informative head reads the final normed hidden states.

Public API (relied on elsewhere, keep it stable):
    model(agent_ids [B,T] long, user_embeds [B,T,H]) -> (logits [B,T,V], informative_logits [B,T])
    model.encode_images(pixel_values [N,3,448,448]) -> [N,64,H]
    model.encode_audio(fbank [B,F,80], lengths [B]) -> [B,12,H]   (12 for 1 s chunks)
    model.fuse(agent_embeds, user_embeds) -> fused
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import Qwen2ForCausalLM
from transformers.cache_utils import Cache

from vispeak_ros.model.audio import WhaleAudioEncoder
from vispeak_ros.model.config import ViSpeakConfig
from vispeak_ros.model.fusion import FusionOrder, StreamFusion
from vispeak_ros.model.heads import InformativeHead
from vispeak_ros.model.vision import InternVisionModel, build_projector, pool_tokens, shuffled_features

IMAGE_TOKEN_INDEX = -200  # user-stream placeholder for one visual token (official constant)
AUDIO_TOKEN_INDEX = -500  # user-stream placeholder for one audio token (official constant)

# Our module path -> the published checkpoint's key prefix. First match wins; the order matters.
KEY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("vision_tower.", "model.vision_tower.vision_tower."),
    ("mm_projector.", "model.mm_projector."),
    ("audio_encoder.", "model.audio_encoder."),
    ("fusion.gate.", "model.combination."),
    ("informative_head.", "informative_head."),
    ("llm.lm_head.", "lm_head."),
    ("llm.model.", "model."),
)


def to_checkpoint_key(ours: str) -> str:
    for mine, theirs in KEY_PREFIXES:
        if ours.startswith(mine):
            return theirs + ours[len(mine) :]
    raise KeyError(ours)


def from_checkpoint_key(theirs: str) -> str | None:
    """Our parameter name for a checkpoint key, or None for a key outside every known prefix."""
    for mine, prefix in KEY_PREFIXES:
        if theirs.startswith(prefix):
            return mine + theirs[len(prefix) :]
    return None


@dataclass
class StepOutput:
    """One LLM call: logits and informative logits for every fed row, and the (updated) cache."""

    logits: torch.Tensor
    informative_logits: torch.Tensor | None
    cache: Cache | None


class ViSpeakForCausalLM(nn.Module):
    def __init__(self, config: ViSpeakConfig) -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        self.llm = Qwen2ForCausalLM(config.llm)
        self.vision_tower = InternVisionModel(config.vision) if config.vision is not None else None
        self.mm_projector = (
            build_projector(config.mm_projector_type, config.mm_hidden_size, hidden)
            if config.vision is not None
            else None
        )
        self.audio_encoder = WhaleAudioEncoder(config.audio) if config.audio is not None else None
        self.fusion = StreamFusion(config.combination, hidden)
        self.informative_head = InformativeHead(hidden) if config.use_informative_head else None
        self.tokenizer = None  # set by the loader: a ViSpeakTokenizer, or None when the files are absent
        self.checkpoint_info = None  # set by the loader: what was read, from where

    # ----------------------------------------------------------------- parts
    @property
    def dtype(self) -> torch.dtype:
        return self.llm.lm_head.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.llm.lm_head.weight.device

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.llm.model.embed_tokens(ids)

    def vision_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The official tower output: [N, 256, 4C] (CLS dropped, x0.5, pixel shuffled), before pooling."""
        if self.vision_tower is None:
            raise RuntimeError("this model has no vision tower")
        return shuffled_features(self.vision_tower(pixel_values))

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Preprocessed pixels [N, 3, 448, 448] -> projected frame tokens [N, 64, H]."""
        pooled = pool_tokens(self.vision_features(pixel_values), self.config.pooling_size)
        return self.mm_projector(pooled)

    def encode_audio_with_mask(self, fbank: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.audio_encoder is None:
            raise RuntimeError("this model has no audio encoder")
        return self.audio_encoder(fbank, lengths)

    def encode_audio(self, fbank: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """fbank [B, F, 80] + lengths [B] -> audio tokens [B, T', H] (T' = 12 for a 1 s chunk of 98-100 frames)."""
        return self.encode_audio_with_mask(fbank, lengths)[0]

    def fuse(
        self, agent_embeds: torch.Tensor, user_embeds: torch.Tensor, order: FusionOrder = "agent_first"
    ) -> torch.Tensor:
        """Fuse the two streams row by row. Keep the default order: see `vispeak_ros.model.fusion`."""
        return self.fusion(agent_embeds, user_embeds.to(agent_embeds.dtype), order)

    def embed_user_stream(
        self,
        user_ids: torch.Tensor,
        image_features: torch.Tensor | None = None,
        audio_features: torch.Tensor | None = None,
        image_token: int = IMAGE_TOKEN_INDEX,
        audio_token: int = AUDIO_TOKEN_INDEX,
    ) -> torch.Tensor:
        """User ids [T] with placeholder runs -> embeddings [T, H].

        Each run of image placeholders takes the next frame's features (its length must equal the tokens per frame),
        each run of audio placeholders the next audio item's features, in order; other ids use `embed_tokens`.
        """
        if user_ids.dim() != 1:
            raise ValueError("embed_user_stream takes one stream [T]")
        ids = user_ids.to(self.device)
        text = (ids != image_token) & (ids != audio_token)
        out = self.embed_tokens(torch.where(text, ids, torch.zeros_like(ids)))
        for token, feats, name in ((image_token, image_features, "image"), (audio_token, audio_features, "audio")):
            runs = _runs(ids == token)
            if not runs:
                continue
            if feats is None or len(feats) != len(runs):
                have = 0 if feats is None else len(feats)
                raise ValueError(f"user stream has {len(runs)} {name} runs but {have} {name} items were given")
            for (start, stop), item in zip(runs, feats, strict=True):
                if item.shape[0] != stop - start:
                    raise ValueError(f"{name} run of {stop - start} placeholders got {item.shape[0]} feature rows")
                out[start:stop] = item.to(out.dtype)
        return out

    # ----------------------------------------------------------------- LLM
    def run_llm(self, inputs_embeds: torch.Tensor, cache: Cache | None = None, use_cache: bool = False) -> StepOutput:
        """Fused rows [B, T, H] -> logits and informative logits; positions continue from the cache length."""
        out = self.llm.model(inputs_embeds=inputs_embeds, cache=cache, use_cache=use_cache)
        hidden = out.last_hidden_state
        logits = self.llm.lm_head(hidden)
        informative = self.informative_head(hidden) if self.informative_head is not None else None
        return StepOutput(logits=logits, informative_logits=informative, cache=out.cache if use_cache else None)

    def forward(self, agent_ids: torch.Tensor, user_embeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The official training-path forward with placeholders already filled: positions 0..T-1, no cache."""
        fused = self.fuse(self.embed_tokens(agent_ids), user_embeds)
        step = self.run_llm(fused)
        return step.logits, step.informative_logits


def _runs(flags: torch.Tensor) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in a 1-D bool tensor."""
    if not bool(flags.any()):
        return []
    padded = torch.cat([flags.new_zeros(1), flags, flags.new_zeros(1)]).to(torch.int8)
    edges = torch.diff(padded)
    starts = torch.nonzero(edges == 1).flatten().tolist()
    stops = torch.nonzero(edges == -1).flatten().tolist()
    return list(zip(starts, stops, strict=True))
