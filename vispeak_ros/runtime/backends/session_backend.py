"""The part of every backend that is not model execution: a `StreamingSession` behind the `Backend` interface.

The decision logic (trigger queue, speaking and pre-emption, sink + window cache bookkeeping, probes) lives once,
in `vispeak_ros.model.session.StreamingSession`, which drives an `LLMStep`. A concrete backend supplies that step
(torch, onnxruntime, later TensorRT) and the three block encoders; everything else here is shared, so two backends
over the same weights take the same decisions by construction.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

import torch

from vispeak_ros.core.trigger import TriggerRule
from vispeak_ros.model.session import LLMStep, SegmentResult, StreamingSession
from vispeak_ros.model.tokenizer import SpecialTokens
from vispeak_ros.runtime.backends.base import Backend, BlockKind, StepResult

MAX_BLOCK_ROWS = 192  # the largest block the runtime feeds (a frame is 65 rows, an audio chunk 13; text is cut)
PROBE_MARGIN_ROWS = 64  # room above the window for label scoring and pad-alignment steps
AUDIO_ROWS = 12 + 1  # one second of audio: 12 tokens + seg


class SessionBackend(Backend):
    """Owns one `StreamingSession` (proactive + reactive, kinds per block, pre-emption on) over an `LLMStep`."""

    def __init__(
        self,
        step: LLMStep,
        tokenizer,
        *,
        frame_rows: int,
        audio_rows: int,
        threshold: float,
        window_segments: int | None,
        max_answer_tokens: int,
        preempt: bool = True,
        release: float = 1.0,
        audio_questions: bool = False,
    ) -> None:
        if tokenizer is None:
            raise ValueError("a backend needs a tokenizer (the checkpoint has no tokenizer.json)")
        self.tokenizer = tokenizer
        self.tokens: SpecialTokens = tokenizer.special_tokens()
        self.max_answer_tokens = max_answer_tokens
        self.frame_rows = frame_rows
        window = None if window_segments is None else window_segments * (frame_rows + audio_rows)
        self._session_args = {
            "window_tokens": window,
            "max_segment_tokens": MAX_BLOCK_ROWS + PROBE_MARGIN_ROWS,
            "proactive": True,
            "reactive": True,
            "threshold": threshold,
            "max_answer_tokens": max_answer_tokens,
            "preempt": preempt,
        }
        self.session = StreamingSession(step, self.tokens, **self._session_args)
        self._threshold, self._release = threshold, release
        self.audio_questions = audio_questions

    def set_trigger_threshold(self, threshold: float) -> None:
        """Change the proactive threshold from the next frame on (the queue keeps its probabilities)."""
        self._threshold = float(threshold)
        self.session.trigger.threshold = float(threshold)

    # ----------------------------------------------------------------- blocks (per backend)
    @abstractmethod
    def frame_block(self, frame): ...

    @abstractmethod
    def audio_block(self, samples): ...

    def text_block(self, ids: Sequence[int]) -> torch.Tensor:
        ids = list(ids)[: MAX_BLOCK_ROWS - 1]  # a longer text keeps its first words (documented in the runtime)
        return self.session.step.embed([*ids, self.tokens.seg])

    # ----------------------------------------------------------------- stream
    def start(self, system_ids: Sequence[int]) -> None:
        """Begin a stream; on a backend that already ran one (a node's ~/reset), a fresh session over the same
        model: the KV cache and the decisions start over, the weights are not reloaded."""
        if self.session.cache.get_seq_length():
            self.session.step.reset()
            self.session = StreamingSession(self.session.step, self.tokens, **self._session_args)
        rows = self.session.step.embed(list(system_ids))
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
        pad_row = self.session.step.embed([self.tokens.pad])[0]
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
