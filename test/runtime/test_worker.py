"""The worker with a backend 3x slower than real time: ingest stays cheap, queues stay bounded, drops are counted,
replays are identical, and an interruption cuts a running answer before the next segment."""

from __future__ import annotations

import time

from runtimekit import segments, slow_assistant

from vispeak_ros.runtime.outputs import FinalAnswer, SpeechCancel
from vispeak_ros.runtime.worker import Worker

PERIOD_S = 0.04  # one stream second, compressed: the producer submits a segment every PERIOD_S
SLOWDOWN = 3.0


def test_slow_backend_ingest_stays_fast_and_bounded_and_drops_are_counted():
    assistant = slow_assistant(SLOWDOWN * PERIOD_S, seed=1, trigger_threshold=0.9, max_answer_tokens=16)
    segs = segments(30, seed=1, texts={5: "hello robot"})
    with Worker(assistant, queue_size=4, output_queue_size=64) as worker:
        for seg in segs:
            worker.submit(seg)
            time.sleep(PERIOD_S)
        assert worker.wait_idle(timeout=30)
    stats = worker.stats
    assert worker.error is None and stats.errors == 0
    assert stats.ingest_percentile(99) < 0.005
    assert stats.segment_queue_high_water <= 4 and stats.output_queue_high_water <= 64
    assert stats.segments_dropped > 0
    assert stats.processed + stats.segments_dropped == stats.submitted == len(segs)
    assert min(stats.process_s) >= SLOWDOWN * PERIOD_S
    indices = [e.segment_index for e in list(worker.outputs.drain())]
    assert indices == sorted(indices), "outputs come out in stream order"


def _replay() -> list:
    assistant = slow_assistant(SLOWDOWN * PERIOD_S / 4, seed=1, trigger_threshold=0.9, max_answer_tokens=16)
    with Worker(assistant, queue_size=2, replay=True) as worker:
        for seg in segments(10, seed=1, texts={5: "hello robot"}):
            worker.submit(seg)
        assert worker.wait_idle(timeout=30)
    assert worker.stats.segments_dropped == 0 and worker.stats.segment_queue_high_water <= 2
    return [e.output for e in worker.outputs.drain()]  # latency fields left out


def test_two_slow_replays_give_identical_outputs():
    first = _replay()
    assert any(isinstance(o, FinalAnswer) for o in first)
    assert first == _replay()


def test_worker_interrupt_cuts_the_running_answer_before_the_next_segment():
    assistant = slow_assistant(0.0, seed=2, trigger_threshold=3.0)
    segs = segments(5, seed=2, texts={2: "hello robot"}, audio=False)
    with Worker(assistant, replay=True) as worker:
        for seg in segs[:3]:
            worker.submit(seg)
        assert worker.wait_idle(timeout=30)
        assert assistant.backend.speaking
        worker.interrupt()
        worker.submit(segs[3])
        assert worker.wait_idle(timeout=30)
    outputs = [e for e in worker.outputs.drain()]
    cancels = [e for e in outputs if isinstance(e.output, SpeechCancel)]
    assert len(cancels) == 1 and cancels[0].output.reason == "interrupted" and cancels[0].segment_index == 3
    assert not assistant.backend.speaking


def test_a_waiter_is_told_the_worker_is_idle_while_its_queue_stays_empty():
    """The worker polls its empty queue without holding the lock `wait_idle` needs (holding it once starved a
    waiter for minutes: locks are not fair)."""
    with Worker(slow_assistant(0.0, seed=1)) as worker:
        for _ in range(50):
            assert worker.wait_idle(timeout=10)
            time.sleep(0.003)
