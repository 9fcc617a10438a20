"""The thread that owns the assistant, so that ingest never waits on the model.

Producers (ROS callbacks, a replay loop) call `submit(segment)`: a non-blocking put into a bounded queue
(`core.queues.BoundedQueue`, DROP_OLDEST: live data wins; every drop is counted) plus a timing sample. One worker
thread takes segments in order, runs `Assistant.process` and hands each output, as soon as it is made, to the
output queue (bounded, DROP_OLDEST, counted) and to an optional callback (which runs on the worker thread and must
be quick: publish or enqueue). `interrupt()` may be called from any thread: it sets a flag that the worker applies
before its next segment (and, in pad alignment, between generation steps), so an interruption cuts a running
answer within one segment. With trained alignment a running answer costs at most one token per user row, so a
segment's processing is bounded; when the model falls behind, stale segments are dropped at the queue (never the
newest), and a frame trigger while speaking pre-empts the running answer (see `assistant`).

Stamps inside outputs are stream time; wall-clock figures (ingest cost, segment latency, output latency) live only
in `Processed`/`Emitted` and `WorkerStats`, so the outputs of a replay are the same run after run. `replay=True`
makes `submit` wait for room instead of dropping: replay and evaluation then see every segment, deterministically.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from vispeak_ros.core.queues import BoundedQueue, DropPolicy
from vispeak_ros.core.segmenter import Segment
from vispeak_ros.runtime.assistant import Assistant
from vispeak_ros.runtime.outputs import Output

TIMING_SAMPLES = 10_000  # recent samples kept for percentiles (bounded memory)


@dataclass(frozen=True)
class Emitted:
    """One output with its wall-clock latency: seconds from the submit of the segment being processed."""

    output: Output
    segment_index: int
    latency_s: float


@dataclass
class WorkerStats:
    submitted: int = 0
    processed: int = 0
    segments_dropped: int = 0
    outputs_dropped: int = 0
    segment_queue_high_water: int = 0
    output_queue_high_water: int = 0
    ingest_s: deque = field(default_factory=lambda: deque(maxlen=TIMING_SAMPLES))  # submit() cost
    process_s: deque = field(default_factory=lambda: deque(maxlen=TIMING_SAMPLES))  # process() wall time
    errors: int = 0

    def ingest_percentile(self, q: float) -> float:
        return _percentile(list(self.ingest_s), q)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100.0 * (len(ordered) - 1)))]


class Worker:
    """Owns an `Assistant` on one thread; see the module docstring."""

    def __init__(
        self,
        assistant: Assistant,
        *,
        queue_size: int | None = None,
        output_queue_size: int = 1024,
        on_output: Callable[[Emitted], None] | None = None,
        replay: bool = False,
    ) -> None:
        self.assistant = assistant
        size = queue_size if queue_size is not None else assistant.config.segment_queue_size
        self.segments: BoundedQueue[tuple[Segment, float]] = BoundedQueue(size, DropPolicy.DROP_OLDEST)
        self.outputs: BoundedQueue[Emitted] = BoundedQueue(output_queue_size, DropPolicy.DROP_OLDEST)
        self.on_output = on_output
        self.replay = replay
        self.stats = WorkerStats()
        self._interrupt = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._busy = 0  # segments taken but not yet processed
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.busy_since: float | None = None  # perf_counter() when the segment in progress started (None: idle)
        self.last_segment: Segment | None = None  # the last segment processed (successfully or not)
        assistant.cancel_requested = self._interrupt.is_set

    # ----------------------------------------------------------------- producer side
    def submit(self, segment: Segment) -> bool:
        """Enqueue a segment without blocking (replay: wait for room). False when the oldest was dropped for it."""
        t0 = time.perf_counter()
        if self.replay:
            while len(self.segments) >= self.segments.maxsize and not self._stop.is_set():
                time.sleep(0.001)
        dropped_before = self.segments.dropped
        self.segments.put((segment, t0))
        stats = self.stats
        stats.submitted += 1
        stats.segments_dropped = self.segments.dropped
        stats.segment_queue_high_water = self.segments.high_water
        stats.ingest_s.append(time.perf_counter() - t0)
        return self.segments.dropped == dropped_before

    def interrupt(self) -> None:
        """Cut the running answer as soon as the worker can (thread-safe)."""
        self._interrupt.set()

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> Worker:
        if self._thread is not None:
            raise RuntimeError("worker already started")
        self._thread = threading.Thread(target=self._run, name="vispeak-runtime", daemon=True)
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        """The worker thread runs (false before start, after stop, or if it died)."""
        return self._thread is not None and self._thread.is_alive()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every submitted segment was processed (or dropped)."""
        with self._idle:
            return self._idle.wait_for(lambda: not len(self.segments) and not self._busy, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the segment in progress; queued segments are left unprocessed."""
        self._stop.set()
        self.segments.put(None)  # type: ignore[arg-type]  # wake the worker
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----------------------------------------------------------------- worker side
    def _run(self) -> None:
        while not self._stop.is_set():
            # Wait outside the idle lock: holding it through the wait starved `wait_idle` of the lock (locks are
            # not fair), and a waiter could hang for as long as the queue stayed empty.
            if not self.segments.wait(0.05):
                with self._idle:
                    self._idle.notify_all()
                continue
            with self._idle:  # take and count as one step, so `wait_idle` never sees the segment in neither place
                item = self.segments.get(timeout=0)
                if item is not None:
                    self._busy += 1
            if item is None:
                continue
            segment, submitted = item
            try:
                if self._interrupt.is_set():
                    self._interrupt.clear()
                    for output in self.assistant.interrupt():
                        self._deliver(output, segment.index, submitted)
                t0 = self.busy_since = time.perf_counter()
                self.assistant.process(segment, lambda out, s=segment, t=submitted: self._deliver(out, s.index, t))
                self.stats.process_s.append(time.perf_counter() - t0)
                self.stats.processed += 1
                if self._interrupt.is_set() and self.assistant.answer is None:
                    self._interrupt.clear()  # consumed inside process (pad alignment)
            except Exception as error:  # keep the thread alive; the node reports it in diagnostics
                self.stats.errors += 1
                self.error = error
            finally:
                self.busy_since = None
                self.last_segment = segment
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def _deliver(self, output: Output, segment_index: int, submitted: float) -> None:
        emitted = Emitted(output, segment_index, time.perf_counter() - submitted)
        self.outputs.put(emitted)
        self.stats.outputs_dropped = self.outputs.dropped
        self.stats.output_queue_high_water = self.outputs.high_water
        if self.on_output is not None:
            self.on_output(emitted)
