"""The interface between the runtime and a model backend (torch, onnxruntime; TensorRT later).

The runtime speaks in *blocks*: user-stream rows that end with the seg token (a frame block, an audio block, a
text block). A backend turns inputs into blocks (encode frame, encode audio, embed text), steps blocks through
the LLM with its own KV cache while applying the decision rules at seg rows (informative score -> trigger, or
next-token argmax), generates answer tokens, and scores continuations without changing its state. Block rows are
opaque to the runtime (`Rows`), so a backend may keep them on its device in its own tensor type.

Decision rules a backend must follow (`session_backend.SessionBackend` gets them from `vispeak_ros.model.session`
for every backend; a new backend normally subclasses it and supplies an `LLMStep` and the block encoders):
- frame block: push sigmoid(informative logit at the frame's last visual token) into the 3-long trigger queue
  (`core.trigger.TriggerRule`); when it fires, start an answer with the proactive marker; while an answer runs
  (trained alignment), a firing trigger cuts it and starts a new proactive answer (pre-emption);
- audio / text block: push nothing; start an answer when the argmax at the seg row is not pad (the emitted
  token, usually ☜ or ☞, is the marker);
- while speaking (trained alignment) each generated token is the agent input of the next user row; the answer
  ends at <|im_end|> or after `max_answer_tokens`; each answer starts with a fresh trigger queue.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from vispeak_ros.core.trigger import TriggerDecision

BlockKind = Literal["frame", "audio", "text"]
Rows = Any  # a backend's own representation of embedded user rows (a torch tensor for the torch backend)


@dataclass(frozen=True)
class StepResult:
    """What one block (or one `speak_on` call) did to the answer stream."""

    previous_ids: tuple[int, ...] | None  # ids (marker first) of the answer running before the call, as it is now
    ended: str | None  # how that answer ended in this call: "im_end", "length", "preempted"; None = still running
    started_ids: tuple[int, ...] | None  # ids of an answer that started in this call (its marker), else None
    informative_prob: float | None  # the probability pushed into the trigger queue (frame blocks only)
    trigger: TriggerDecision | None  # the trigger decision at this block's seg row, when one was taken
    rows: int  # user rows consumed


class Backend(ABC):
    """One stream over one model. Not thread-safe: the runtime's single worker owns it."""

    #: which backend this is ("torch", "onnxruntime", "tensorrt"), for logs and diagnostics
    name: str = "backend"
    #: how the factory chose it: one line per skipped candidate ("<name>: <reason>"), then the choice
    selection: tuple[str, ...] = ()
    #: token ids the runtime needs (pad, im_end, markers)
    tokens: Any
    #: a `ViSpeakTokenizer`-like object: encode(text) -> ids, decode_answer(ids) -> text
    tokenizer: Any

    @abstractmethod
    def frame_block(self, frame: np.ndarray) -> Rows:
        """An RGB uint8 frame -> its visual rows + the seg row."""

    @abstractmethod
    def audio_block(self, samples: np.ndarray) -> Rows:
        """Exactly one second of 16 kHz mono float32 audio -> its audio rows + the seg row."""

    @abstractmethod
    def text_block(self, ids: Sequence[int]) -> Rows:
        """User text ids -> their rows + the seg row."""

    @abstractmethod
    def start(self, system_ids: Sequence[int]) -> None:
        """Prefill the system prompt (ids ending with seg); it stays as the attention sink."""

    @abstractmethod
    def step(self, rows: Rows, kind: BlockKind) -> StepResult:
        """Feed one block with the KV cache, applying the decision rule of its kind at its seg row."""

    @abstractmethod
    def speak_on(self, max_tokens: int) -> StepResult:
        """`pad` alignment: continue the running answer over pad user rows, at most `max_tokens` tokens."""

    @abstractmethod
    def cancel(self) -> tuple[int, ...] | None:
        """Cut the running answer now; its ids, or None when silent."""

    @abstractmethod
    def score(self, prefix: Sequence[int], candidates: Sequence[Sequence[int]]) -> list[float]:
        """Mean log-probability of each candidate continuing `prefix` in the agent stream, after the current
        cache; the backend's state (cache, decisions) is left exactly as it was."""

    def set_trigger_threshold(self, threshold: float) -> None:
        """Change the proactive threshold while the stream runs (a running parameter of the node)."""
        raise NotImplementedError(f"{type(self).__name__} cannot change its trigger threshold while running")

    @property
    @abstractmethod
    def speaking(self) -> bool:
        """An answer is running."""

    @abstractmethod
    def cache_length(self) -> int:
        """Rows in the KV cache (for diagnostics and tests)."""
