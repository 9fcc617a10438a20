"""The torch backend: a `ViSpeakForCausalLM` (encoders + `TorchLLMStep`) behind the runtime's `Backend` interface."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vispeak_ros.model.processors import audio_chunk_features, preprocess_image
from vispeak_ros.model.session import TorchLLMStep
from vispeak_ros.model.vispeak import ViSpeakForCausalLM
from vispeak_ros.runtime.backends.session_backend import (
    AUDIO_ROWS,
    MAX_BLOCK_ROWS,
    PROBE_MARGIN_ROWS,
    SessionBackend,
)

__all__ = ["MAX_BLOCK_ROWS", "PROBE_MARGIN_ROWS", "TorchBackend"]


class TorchBackend(SessionBackend):
    """The torch model runs the encoders and the LLM steps; decisions come from the shared `SessionBackend`."""

    name = "torch"

    def __init__(
        self,
        model: ViSpeakForCausalLM,
        tokenizer,
        *,
        threshold: float,
        window_segments: int | None,
        max_answer_tokens: int,
        preempt: bool = True,
        release: float = 1.0,
        audio_questions: bool = False,
    ) -> None:
        if tokenizer is None:
            raise ValueError("the torch backend needs a tokenizer (the checkpoint has no tokenizer.json)")
        self.model = model
        with torch.no_grad():
            self._seg_row = model.embed_tokens(torch.tensor([tokenizer.special_tokens().seg], device=model.device))
        frame_rows = self._frame_tokens() + 1 if model.vision_tower is not None else 0
        super().__init__(
            TorchLLMStep(model),
            tokenizer,
            frame_rows=frame_rows,
            audio_rows=AUDIO_ROWS if model.audio_encoder is not None else 0,
            threshold=threshold,
            window_segments=window_segments,
            max_answer_tokens=max_answer_tokens,
            preempt=preempt,
            release=release,
            audio_questions=audio_questions,
        )

    @torch.no_grad()
    def _frame_tokens(self) -> int:
        black = np.zeros((self.model.config.vision.image_size,) * 2 + (3,), np.uint8)
        return int(self._encode_frame(black).shape[0])

    def _encode_frame(self, frame: np.ndarray) -> torch.Tensor:
        pixels = preprocess_image(frame, self.model.config.vision)[None].to(self.model.device, self.model.dtype)
        return self.model.encode_images(pixels)[0]

    # ----------------------------------------------------------------- blocks
    @torch.no_grad()
    def frame_block(self, frame: np.ndarray) -> torch.Tensor:
        return torch.cat([self._encode_frame(frame), self._seg_row.to(self.model.dtype)])

    @torch.no_grad()
    def audio_block(self, samples: np.ndarray) -> torch.Tensor:
        fbank, lengths = audio_chunk_features(samples, self.model.config.audio.fbank)
        feats = self.model.encode_audio(fbank[:1].to(self.model.device, self.model.dtype), lengths[:1])[0]
        return torch.cat([feats, self._seg_row.to(feats.dtype)])

    @torch.no_grad()
    def text_block(self, ids: Sequence[int]) -> torch.Tensor:
        return super().text_block(ids)
