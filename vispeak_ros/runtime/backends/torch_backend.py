"""The torch backend: a `ViSpeakForCausalLM` and its `StreamingSession` behind the runtime's `Backend` interface."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vispeak_ros.core.trigger import TriggerRule
from vispeak_ros.model.processors import audio_chunk_features, preprocess_image
from vispeak_ros.model.session import SegmentResult, StreamingSession
from vispeak_ros.model.tokenizer import SpecialTokens
from vispeak_ros.model.vispeak import ViSpeakForCausalLM
from vispeak_ros.runtime.backends.base import Backend, BlockKind, StepResult

MAX_BLOCK_ROWS = 192  # the largest block the runtime feeds (a frame is 65 rows, an audio chunk 13; text is cut)
PROBE_MARGIN_ROWS = 64  # room above the window for label scoring and pad-alignment steps


class TorchBackend(Backend):
    """Owns one `StreamingSession` (proactive + reactive, kinds per block, pre-emption on)."""

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
        self.tokenizer = tokenizer
        self.tokens: SpecialTokens = tokenizer.special_tokens()
        self.max_answer_tokens = max_answer_tokens
        with torch.no_grad():
            self._seg_row = model.embed_tokens(torch.tensor([self.tokens.seg], device=model.device))
            self.frame_rows = self._frame_tokens() + 1 if model.vision_tower is not None else 0
        audio_rows = 12 + 1 if model.audio_encoder is not None else 0
        window = None if window_segments is None else window_segments * (self.frame_rows + audio_rows)
        self.session = StreamingSession(
            model,
            self.tokens,
            window_tokens=window,
            max_segment_tokens=MAX_BLOCK_ROWS + PROBE_MARGIN_ROWS,
            proactive=True,
            reactive=True,
            threshold=threshold,
            max_answer_tokens=max_answer_tokens,
            preempt=preempt,
        )
        self._threshold, self._release = threshold, release
        self.audio_questions = audio_questions

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
        ids = list(ids)[: MAX_BLOCK_ROWS - 1]  # a longer text keeps its first words (documented in the runtime)
        return self.model.embed_tokens(torch.tensor([*ids, self.tokens.seg], device=self.model.device))

    # ----------------------------------------------------------------- stream
    @torch.no_grad()
    def start(self, system_ids: Sequence[int]) -> None:
        rows = self.model.embed_tokens(torch.tensor(list(system_ids), device=self.model.device))
        self.session.start([rows])
        self.session.cancel()  # the official first decision cannot trigger; a reactive start here would be noise
        self.session.next_agent = self.tokens.pad
        self.session.trigger = TriggerRule(self._threshold, release=self._release)  # a fresh trigger per stream

    def _wrap(self, call, rows: int) -> StepResult:
        """Run a session call and report the answers it touched; the session keeps one list per answer."""
        session = self.session
        before = session.answer if session.speaking else None
        result: SegmentResult = call()
        ended = None
        previous = None
        started = None
        if before is not None:
            if result.preempted:
                previous, ended = tuple(result.cut or before), "preempted"
            else:
                previous = tuple(before)
                if session.answer is not before or not session.speaking:
                    ended = "im_end" if before and before[-1] == self.tokens.im_end else "length"
        if result.started or result.preempted:
            started = tuple(session.answer[:1])
        return StepResult(
            previous_ids=previous,
            ended=ended,
            started_ids=started,
            informative_prob=result.informative_prob,
            trigger=session.last_trigger if result.informative_prob is not None else None,
            rows=rows,
        )

    def step(self, rows: torch.Tensor, kind: BlockKind) -> StepResult:
        # audio seg rows decide only when the checkpoint answers speech (config audio_questions)
        self.session.reactive = kind != "audio" or self.audio_questions
        try:
            return self._wrap(lambda: self.session.feed(rows, kind=kind), int(rows.shape[0]))
        finally:
            self.session.reactive = True

    def speak_on(self, max_tokens: int) -> StepResult:
        count = min(max_tokens, MAX_BLOCK_ROWS)
        return self._wrap(lambda: self.session.finish(count), count)

    def cancel(self) -> tuple[int, ...] | None:
        cut = self.session.cancel()
        return None if cut is None else tuple(cut)

    @torch.no_grad()
    def score(self, prefix: Sequence[int], candidates: Sequence[Sequence[int]]) -> list[float]:
        pad_row = self.model.embed_tokens(torch.tensor([self.tokens.pad], device=self.model.device))[0]
        scores = []
        for candidate in candidates:
            if not candidate:
                raise ValueError("an empty candidate cannot be scored")
            agent = [*prefix, *candidate[:-1]]
            logits = self.session.probe(pad_row.expand(len(agent), -1), agent)
            limit = self.tokens.vocab_limit
            logp = torch.log_softmax((logits[:, :limit] if limit else logits).float(), dim=-1)
            rows = torch.arange(len(prefix) - 1, len(agent), device=logp.device)
            picked = logp[rows, torch.tensor(list(candidate), device=logp.device)]
            scores.append(float(picked.mean()))
        return scores

    @property
    def speaking(self) -> bool:
        return self.session.speaking

    def cache_length(self) -> int:
        return self.session.cache.get_seq_length()
