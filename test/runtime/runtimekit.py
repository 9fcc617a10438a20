"""Helpers for the runtime tests: scripted segments and an assistant over the tiny random model (a real model)."""

from __future__ import annotations

import time

import numpy as np

from vispeak_ros.core.clock import NS_PER_S
from vispeak_ros.core.segmenter import SAMPLES_PER_SEGMENT, Segment, TimedText
from vispeak_ros.model.tiny import tiny_model
from vispeak_ros.runtime.assistant import Assistant
from vispeak_ros.runtime.backends.base import Backend
from vispeak_ros.runtime.config import RuntimeConfig
from vispeak_ros.runtime.tiny import tiny_tokenizer

T0 = 1_700_000_000 * NS_PER_S


def segments(count: int, seed: int = 0, texts: dict[int, str] | None = None, audio: bool = True) -> list[Segment]:
    """`count` one-second segments with random 56x56 frames, quiet random audio and the given user texts."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        start = T0 + i * NS_PER_S
        end = start + NS_PER_S
        said = (texts or {}).get(i)
        out.append(
            Segment(
                index=i,
                start_ns=start,
                end_ns=end,
                frame=rng.integers(0, 256, (56, 56, 3), dtype=np.uint8),
                frame_stamp_ns=start + NS_PER_S // 2,
                audio=(rng.standard_normal(SAMPLES_PER_SEGMENT) * 0.01).astype(np.float32),
                audio_coverage=1.0 if audio else 0.0,
                texts=(TimedText(end - 1, said),) if said else (),
                partial=False,
            )
        )
    return out


def tiny_assistant(seed: int = 0, **overrides) -> Assistant:
    config = RuntimeConfig().with_overrides(**overrides) if overrides else RuntimeConfig()
    return Assistant.from_model(tiny_model(seed=seed), tiny_tokenizer(), config)


class SlowBackend(Backend):
    """A real backend made slower: every frame block sleeps `delay_s` more (a backend slower than real time)."""

    def __init__(self, inner: Backend, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.tokens = inner.tokens
        self.tokenizer = inner.tokenizer

    def frame_block(self, frame):
        return self.inner.frame_block(frame)

    def audio_block(self, samples):
        return self.inner.audio_block(samples)

    def text_block(self, ids):
        return self.inner.text_block(ids)

    def start(self, system_ids):
        self.inner.start(system_ids)

    def step(self, rows, kind):
        if kind == "frame":
            time.sleep(self.delay_s)
        return self.inner.step(rows, kind)

    def speak_on(self, max_tokens):
        return self.inner.speak_on(max_tokens)

    def cancel(self):
        return self.inner.cancel()

    def score(self, prefix, candidates):
        return self.inner.score(prefix, candidates)

    @property
    def speaking(self):
        return self.inner.speaking

    def cache_length(self):
        return self.inner.cache_length()


def slow_assistant(delay_s: float, seed: int = 0, **overrides) -> Assistant:
    from vispeak_ros.runtime.backends.torch_backend import TorchBackend

    config = RuntimeConfig().with_overrides(**overrides)
    backend = TorchBackend(
        tiny_model(seed=seed),
        tiny_tokenizer(),
        threshold=config.trigger_threshold,
        window_segments=config.window_segments,
        max_answer_tokens=config.max_answer_tokens,
        release=config.trigger_release,
        audio_questions=config.audio_questions,
    )
    return Assistant(config, SlowBackend(backend, delay_s))
