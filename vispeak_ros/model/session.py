"""Streaming session: feed segments, decide at each seg token whether to speak, speak token by token.

This is the official streaming loop (ViSpeak's `streaming_generate`) made incremental and bounded:
- `start(segments)` prefills the system prompt (the attention sink) and any first segments in one call, then
  decides at the last seg token. As in the official loop, that first decision sees no informative value (the
  official initial logit -100), so it can never trigger proactively.
- `feed(user_embeds)` takes one segment (rows ending with the seg token). While silent the whole segment goes in as
  one prefill with the agent stream at pad (only the new rows are computed: the KV cache is reused). At the seg row:
  push sigmoid(informative logit of the row before it) into a queue of 3; proactive mode starts when the queue sum
  exceeds 0.35 and forces the proactive marker; reactive mode starts when the argmax at the seg row is not pad.
- While speaking, each generated agent token is fed back as the agent stream of the *next user-stream row*
  (watching while speaking), one row per step, until `<|im_end|>`; the im_end itself is the agent input of the row
  after it, then the agent stream returns to pad and decisions resume (with a fresh queue: the official loop
  answers once per call, so a continuous stream must not re-trigger on the evidence of the answer it just gave).
- `finish(rows)` lets an unfinished answer run on over pad user rows, as the official loop's padding does.

Block kinds (the runtime's layout, used by the trainer too): `feed(rows, kind=...)` with kind "frame" pushes into
the trigger queue and may only start a proactive answer; "audio" and "text" push nothing and may only start a
reactive answer (argmax not pad). kind None keeps the official rule (push and decide at every seg row).
With `preempt=True`, the trigger is also evaluated at frame seg rows while speaking: when it fires, the running
answer is cut there and a new proactive answer starts at that row (`SegmentResult.preempted`, `.cut`); each answer
starts with a fresh queue. `cancel()` cuts the running answer from outside (the agent stream gets <|im_end|> next).
`probe(...)` runs rows and then restores the cache, for scoring continuations without changing the session.

Bounded memory for unbounded streams (`window_tokens`): the system prompt stays as an attention sink; before each
new segment the oldest whole segments are dropped until the retained window holds at most `window_tokens` rows,
and the keys after the gap are re-rotated to their new positions (`SinkWindowCache`). Position ids fed to the LLM
therefore stay below `sink + window_tokens + max_segment_tokens` for ever. With `window_tokens=None` nothing is
dropped and the session equals a one-shot forward over the same rows.

Greedy decoding only (the official temperature 0.01 + argmax is argmax), restricted to `tokens.vocab_limit`.

Where the model runs (`LLMStep`): the session holds the decision logic only. Everything that touches weights goes
through one small step object: fuse agent + user rows, run the LLM over them at explicit position ids on top of
its KV cache, return informative logits and logits; plus the cache's length, `drop` (sink + window with re-rotated
keys) and snapshot/restore for probes. `TorchLLMStep` runs the torch model; the onnxruntime backend supplies its
own step over exported graphs (`vispeak_ros.runtime.backends.onnx_backend`), so both share this loop exactly.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from vispeak_ros.core.trigger import DEFAULT_THRESHOLD, TriggerDecision, TriggerRule
from vispeak_ros.model.cache import SinkWindowCache
from vispeak_ros.model.fusion import FusionOrder
from vispeak_ros.model.tokenizer import SpecialTokens
from vispeak_ros.model.vispeak import ViSpeakForCausalLM

INITIAL_INFORMATIVE_LOGIT = -100.0  # what the official loop pushes before it has seen any informative value
TRAINED_MAX_LENGTH = 6200  # ViSpeak's training length (tokenizer_model_max_length): positions the model has seen


def window_within_trained_length(
    sink_tokens: int, max_segment_tokens: int, max_length: int = TRAINED_MAX_LENGTH
) -> int:
    """The largest window whose position ids stay inside the trained length: sink + window + segment <= max_length."""
    window = max_length - sink_tokens - max_segment_tokens
    if window <= 0:
        raise ValueError(f"sink {sink_tokens} + segment {max_segment_tokens} leave no window within {max_length}")
    return window


class LLMStep(Protocol):
    """What the session needs from a model runtime (torch here; onnxruntime and TensorRT elsewhere)."""

    cache: Any  # has get_seq_length() and drop(start, count) (sink + window eviction with re-rotated keys)
    has_informative_head: bool

    def run(
        self, user_embeds: torch.Tensor, agent_ids: list[int], order: FusionOrder, all_logits: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fuse and feed rows at positions cache_length.. (appending to the cache); return (informative float32
        [rows], logits float32 [rows or 1 when not all_logits, V]) as CPU-or-device torch tensors."""
        ...

    def embed(self, ids: list[int]) -> torch.Tensor:
        """Token ids -> embedded user rows [len(ids), H]."""
        ...

    def snapshot(self) -> Any:
        """An opaque copy of the cache state that `restore` brings back exactly."""
        ...

    def restore(self, state: Any) -> None: ...

    def reset(self) -> None:
        """An empty cache, for a new stream over the same weights."""
        ...


class TorchLLMStep:
    """`LLMStep` over a torch `ViSpeakForCausalLM`: stock transformers Qwen2 with a `SinkWindowCache`."""

    def __init__(self, model: ViSpeakForCausalLM) -> None:
        self.model = model
        self.reset()
        self.has_informative_head = model.informative_head is not None

    def reset(self) -> None:
        self.cache = SinkWindowCache(self.model.config.llm, self.model.llm.model.rotary_emb.inv_freq)

    @torch.no_grad()
    def run(
        self, user_embeds: torch.Tensor, agent_ids: list[int], order: FusionOrder, all_logits: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        model = self.model
        start = self.cache.get_seq_length()
        rows = user_embeds.shape[0]
        agent = model.embed_tokens(torch.tensor(agent_ids, device=model.device))
        fused = model.fuse(agent, user_embeds.to(device=model.device, dtype=model.dtype), order)
        positions = torch.arange(start, start + rows, device=model.device).unsqueeze(0)
        out = model.llm.model(inputs_embeds=fused[None], position_ids=positions, cache=self.cache, use_cache=True)
        hidden = out.last_hidden_state[0]
        if model.informative_head is not None:
            informative = model.informative_head(hidden)
        else:
            informative = torch.zeros(rows, device=hidden.device)
        logits = model.llm.lm_head(hidden if all_logits else hidden[-1:]).float()
        return informative.float(), logits

    @torch.no_grad()
    def embed(self, ids: list[int]) -> torch.Tensor:
        return self.model.embed_tokens(torch.tensor(list(ids), device=self.model.device))

    def snapshot(self) -> Any:
        # DynamicLayer.update concatenates into new tensors, so keeping the old ones restores the cache exactly
        return [(layer.keys, layer.values) for layer in self.cache.layers]

    def restore(self, state: Any) -> None:
        for layer, (keys, values) in zip(self.cache.layers, state, strict=True):
            layer.keys, layer.values = keys, values


@dataclass
class SegmentResult:
    """What one `start`/`feed`/`finish` call did, row by row."""

    emitted: list[int]  # the agent token produced at each fed row (pad while silent)
    informative_logits: torch.Tensor  # [rows] float32, the head at every fed row
    informative_prob: float | None  # the probability pushed into the trigger queue at this segment's seg row
    started: bool  # an answer started at this segment's seg row
    finished: bool  # an answer ended with <|im_end|> inside this call
    speaking: bool  # an answer is still running after this call
    first_position: int  # position id of the first fed row
    logits: torch.Tensor | None = None  # [rows, V] when the session records logits
    preempted: bool = False  # a running answer was cut at a frame seg row and a new proactive answer started there
    cut: list[int] | None = None  # the ids of the answer that was cut (marker first), when preempted


class StreamingSession:
    """One stream (batch 1) over a loaded model. Not thread-safe; one worker owns it."""

    def __init__(
        self,
        model: ViSpeakForCausalLM | LLMStep,
        tokens: SpecialTokens,
        *,
        window_tokens: int | None = None,
        max_segment_tokens: int = 256,
        proactive: bool = True,
        reactive: bool = False,
        threshold: float = DEFAULT_THRESHOLD,
        max_answer_tokens: int = 512,
        record_logits: bool = False,
        preempt: bool = False,
    ) -> None:
        if window_tokens is not None and window_tokens < 0:
            raise ValueError("window_tokens must be >= 0 or None")
        self.step: LLMStep = TorchLLMStep(model) if isinstance(model, ViSpeakForCausalLM) else model
        self.model = model if isinstance(model, ViSpeakForCausalLM) else None  # the torch model, when there is one
        self.tokens = tokens
        self.window_tokens = window_tokens
        self.max_segment_tokens = max_segment_tokens
        self.proactive = proactive
        self.reactive = reactive
        self.max_answer_tokens = max_answer_tokens
        self.record_logits = record_logits
        self.preempt = preempt
        self.cache = self.step.cache
        self.sink_len = 0
        self.segments: deque[int] = deque()  # lengths of the retained segments after the sink, oldest first
        self.trigger = TriggerRule(threshold)
        self.last_trigger: TriggerDecision | None = None  # the decision at the latest seg row, for diagnostics
        self.speaking = False
        self.answer: list[int] = []
        self.next_agent = tokens.pad  # agent-stream token of the next user row
        self.prev_informative = INITIAL_INFORMATIVE_LOGIT
        self.max_position = -1  # largest position id fed so far
        self.rows_seen = 0  # user rows consumed since start (unbounded counter, not a position)

    # ----------------------------------------------------------------- bounds
    @property
    def position_bound(self) -> int | None:
        """Exclusive bound on position ids when windowed."""
        if self.window_tokens is None:
            return None
        return self.sink_len + self.window_tokens + self.max_segment_tokens

    def _make_room(self) -> None:
        if self.window_tokens is None:
            return
        while self.segments and sum(self.segments) > self.window_tokens:
            self.cache.drop(self.sink_len, self.segments.popleft())

    # ----------------------------------------------------------------- LLM calls
    @torch.no_grad()
    def _run(
        self, user_embeds: torch.Tensor, agent_ids: list[int], order: FusionOrder, all_logits: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fuse and feed rows; return (informative [rows], logits [rows or 1, V]). Inference only: no autograd."""
        start = self.cache.get_seq_length()
        rows = user_embeds.shape[0]
        bound = self.position_bound
        if bound is not None and start + rows > bound:
            raise RuntimeError(f"position {start + rows - 1} would exceed the bound {bound - 1}")
        informative, logits = self.step.run(user_embeds, agent_ids, order, all_logits)
        self.max_position = max(self.max_position, start + rows - 1)
        self.rows_seen += rows
        return informative, logits

    def _argmax(self, logits: torch.Tensor) -> int:
        limit = self.tokens.vocab_limit
        return int((logits[..., :limit] if limit else logits).argmax(-1))

    # ----------------------------------------------------------------- decisions
    def _decide(
        self, informative_before_seg: float, seg_logits: torch.Tensor, forced: int | None, kind: str | None = None
    ) -> tuple[int, float | None]:
        """At a seg row while silent: the token to emit (pad = stay silent) and the probability pushed (None when
        the block kind pushes nothing: audio and text blocks)."""
        prob: float | None = None
        if kind in (None, "frame"):
            prob = 1.0 / (1.0 + math.exp(-informative_before_seg))
            self.last_trigger = self.trigger.push(prob) if self.step.has_informative_head else None
            if self.proactive and self.last_trigger is not None and self.last_trigger.fired:
                return self.tokens.proactive, prob
        if kind != "frame":
            token = self._argmax(seg_logits) if forced is None else forced
            if self.reactive and token != self.tokens.pad:
                return token, prob
        return self.tokens.pad, prob

    def _begin_answer(self, token: int) -> None:
        if self.preempt:  # the evidence that started this answer must not pre-empt it
            self.trigger.rearm()
        self.speaking = True
        self.answer = [token]
        self.next_agent = token

    def _end_answer(self) -> None:
        self.speaking = False
        self.trigger.rearm()

    # ----------------------------------------------------------------- segments
    def start(
        self,
        segments: Sequence[torch.Tensor],
        agent_ids: Sequence[int] | None = None,
        *,
        prefill_order: FusionOrder = "agent_first",
        forced_first: int | None = None,
    ) -> SegmentResult:
        """Prefill the system prompt (segments[0], kept as the attention sink) and any first segments in one call.

        `agent_ids` may pre-fill the agent stream of these rows (e.g. an earlier answer). `prefill_order` exists only
        for parity with the official streaming prefill ("user_first"); keep the trained "agent_first".
        `forced_first` replaces the argmax at the decision (the official interrupt override).
        """
        if self.cache.get_seq_length():
            raise RuntimeError("start() was already called on this session")
        if not segments:
            raise ValueError("start() needs at least the system prompt segment")
        lengths = [int(s.shape[0]) for s in segments]
        embeds = torch.cat(list(segments), dim=0)
        rows = embeds.shape[0]
        agent = [self.tokens.pad] * rows if agent_ids is None else [int(t) for t in agent_ids]
        if len(agent) != rows:
            raise ValueError(f"agent_ids has {len(agent)} ids for {rows} rows")
        self.sink_len = lengths[0]
        self.segments.extend(lengths[1:])
        informative, logits = self._run(embeds, agent, prefill_order, self.record_logits)
        token, prob = self._decide(self.prev_informative, logits[-1], forced_first)
        self.prev_informative = float(informative[-1])
        emitted = [self.tokens.pad] * (rows - 1) + [token]
        started = token != self.tokens.pad
        if started:
            self._begin_answer(token)
        return self._result(emitted, informative, prob, started, False, 0, logits)

    def cancel(self) -> list[int] | None:
        """Cut the running answer now (an interruption from outside); returns its ids, or None when silent.
        The agent stream of the next row is <|im_end|>, so the model sees the answer end where it was cut."""
        if not self.speaking:
            return None
        cut = list(self.answer)
        self.next_agent = self.tokens.im_end
        self._end_answer()
        return cut

    @torch.no_grad()
    def probe(self, user_embeds: torch.Tensor, agent_ids: list[int]) -> torch.Tensor:
        """Logits [rows, V] for rows fed after the current cache, which is then cropped back: the session (cache,
        counters, decisions) is left exactly as it was. For scoring continuations (event typing)."""
        saved = self.step.snapshot()
        max_position, rows_seen = self.max_position, self.rows_seen
        try:
            _, logits = self._run(user_embeds, agent_ids, "agent_first", True)
        finally:
            self.step.restore(saved)
            self.max_position, self.rows_seen = max_position, rows_seen
        return logits

    def feed(self, user_embeds: torch.Tensor, kind: str | None = None) -> SegmentResult:
        """One segment of user-stream rows [L, H], its last row being the seg token. `kind` ("frame", "audio",
        "text" or None for the official rule) says which decision applies at its seg row (module docstring)."""
        if kind not in (None, "frame", "audio", "text"):
            raise ValueError(f"kind must be 'frame', 'audio', 'text' or None, got {kind!r}")
        rows = int(user_embeds.shape[0])
        if rows == 0 or rows > self.max_segment_tokens:
            raise ValueError(f"a segment has 1..{self.max_segment_tokens} rows, got {rows}")
        if not self.cache.get_seq_length():
            raise RuntimeError("call start() with the system prompt first")
        self._make_room()
        first = self.cache.get_seq_length()
        return self._consume(user_embeds, first, stream_ended=False, kind=kind)

    def finish(self, max_rows: int) -> SegmentResult:
        """Let a running answer go on over pad user rows (the stream has ended), at most `max_rows` rows."""
        pad_row = self.step.embed([self.tokens.pad])[0]
        results: list[SegmentResult] = []
        left = max_rows
        while self.speaking and left > 0:
            rows = min(left, self.max_segment_tokens)
            self._make_room()
            first = self.cache.get_seq_length()
            results.append(self._consume(pad_row.expand(rows, -1), first, stream_ended=True))
            left -= rows
        return _merge(results, self.cache.get_seq_length())

    def _consume(
        self, user_embeds: torch.Tensor, first: int, stream_ended: bool, kind: str | None = None
    ) -> SegmentResult:
        """Feed rows: one by one while speaking, the rest as one silent prefill with a decision at its seg row.
        After the stream has ended (finish), rows after the answer's end are not fed at all."""
        rows = int(user_embeds.shape[0])
        emitted: list[int] = []
        informs: list[torch.Tensor] = []
        logit_rows: list[torch.Tensor] = []
        finished = False
        preempted_prob: float | None = None
        cut: list[int] | None = None
        i = 0
        while i < rows and self.speaking:  # watching while speaking: one row per generated token
            informative, logits = self._run(user_embeds[i : i + 1], [self.next_agent], "agent_first", True)
            token = self._argmax(logits[-1])
            if self.preempt and kind == "frame" and i == rows - 1 and self.step.has_informative_head:
                preempted_prob = 1.0 / (1.0 + math.exp(-self.prev_informative))
                self.last_trigger = self.trigger.push(preempted_prob)
                if self.proactive and self.last_trigger.fired:  # a newer trigger cuts the running answer here
                    cut = list(self.answer)
                    self._begin_answer(self.tokens.proactive)
                    emitted.append(self.tokens.proactive)
                    informs.append(informative)
                    logit_rows.append(logits)
                    self.prev_informative = float(informative[-1])
                    i += 1
                    continue
            self.answer.append(token)
            emitted.append(token)
            informs.append(informative)
            logit_rows.append(logits)
            self.next_agent = token
            self.prev_informative = float(informative[-1])
            i += 1
            if token == self.tokens.im_end or len(self.answer) >= self.max_answer_tokens:
                finished = token == self.tokens.im_end
                if not finished:
                    self.next_agent = self.tokens.pad
                self._end_answer()
        prob = None
        started = False
        if i < rows and not stream_ended:  # silent: the rest of the segment in one prefill
            agent = [self.next_agent] + [self.tokens.pad] * (rows - i - 1)
            informative, logits = self._run(user_embeds[i:], agent, "agent_first", self.record_logits)
            self.next_agent = self.tokens.pad
            informs.append(informative)
            logit_rows.append(logits)
            emitted += [self.tokens.pad] * (rows - i)
            before = float(informative[-2]) if rows - i >= 2 else self.prev_informative
            token, prob = self._decide(before, logits[-1], None, kind)
            if token != self.tokens.pad:
                emitted[-1] = token
                started = True
                self._begin_answer(token)
            self.prev_informative = float(informative[-1])
            i = rows
        self.segments.append(i)  # pad rows of finish() form segments of their own, for eviction
        logits_out = torch.cat(logit_rows) if self.record_logits else None
        if prob is None:
            prob = preempted_prob
        result = self._result(emitted, torch.cat(informs), prob, started, finished, first, logits_out)
        result.preempted = cut is not None
        result.cut = cut
        return result

    def _result(
        self,
        emitted: list[int],
        informative: torch.Tensor,
        prob: float | None,
        started: bool,
        finished: bool,
        first: int,
        logits: torch.Tensor | None,
    ) -> SegmentResult:
        return SegmentResult(
            emitted=emitted,
            informative_logits=informative,
            informative_prob=prob,
            started=started,
            finished=finished,
            speaking=self.speaking,
            first_position=first,
            logits=logits if self.record_logits else None,
        )


def _merge(results: list[SegmentResult], position: int) -> SegmentResult:
    if not results:
        return SegmentResult([], torch.zeros(0), None, False, False, False, position, None)
    logits = [r.logits for r in results if r.logits is not None]
    return SegmentResult(
        emitted=[t for r in results for t in r.emitted],
        informative_logits=torch.cat([r.informative_logits for r in results]),
        informative_prob=None,
        started=False,
        finished=any(r.finished for r in results),
        speaking=results[-1].speaking,
        first_position=results[0].first_position,
        logits=torch.cat(logits) if logits else None,
    )
