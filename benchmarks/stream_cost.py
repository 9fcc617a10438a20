"""Per-segment cost and memory of an unbounded stream: bounded StreamingSession vs naive re-prefill.

Tiny random ViSpeak on CPU. One stream second = a frame segment (64 visual rows + seg) and an audio segment
(12 rows + seg), as the template lays them out, after the `vispeak` system prompt (the attention sink). The window
holds 8 s of stream, so it is full before the 10 s reference point: the ratio then isolates growth with stream
length. (A larger window raises the flat steady-state cost by the attention over more retained keys, which
dominates on this tiny model; the cost stays flat once the window is full, whatever its size.)

- late_early_ratio: session cost of one stream second late in the stream / at 10 s. Goal <= 1.15.
- naive_late_early_ratio: the same for re-prefilling the whole history every second (what a cache-less loop
  pays); measured at 10 s and at the late point, capped at `naive_late_s` in the full run (an hour of history in one
  forward is out of reach on CPU; the ratio is already far above the goal there).
- rss_growth_mb: resident memory at the end of the stream minus at 10 s. Goal <= 50 MB.
Costs are timed side by side: the session's state at 10 s is kept (a copy of its cache), and at the end the same
stream second is fed alternately to a fresh copy of that early state and to the late session, so that load from
other processes on the machine hits both figures alike. The naive forwards alternate the same way.
Full run: 1 h of stream. --quick: 60 s of stream (7.5 windows), the late figure taken only after the window has been
full for 2 window lengths (from 3 windows on).
"""

from __future__ import annotations

import copy
import gc
import os
import resource
import statistics
import time

import torch

from vispeak_ros.model.session import StreamingSession
from vispeak_ros.model.tiny import tiny_model
from vispeak_ros.model.tokenizer import SpecialTokens

DESCRIPTION = "bounded streaming session vs naive re-prefill on a tiny model: late/early cost ratio, RSS growth"

FRAME_ROWS, AUDIO_ROWS, SYSTEM_ROWS = 65, 13, 45  # 64 + seg, 12 + seg, the vispeak prompt + seg
ROWS_PER_SECOND = FRAME_ROWS + AUDIO_ROWS
EARLY_S = 10
WINDOW_S = 8
QUICK_S = 60
ROUNDS = 40
NAIVE_CAP_S = 600
TOKENS = SpecialTokens(seg=1, pad=0, im_end=2, proactive=3)


def rss_mb() -> float:
    """Current resident set size (Linux /proc; elsewhere the peak, which can only overstate growth)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stream_rows(model) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random user rows for the system prompt, one frame segment and one audio segment (reused every second)."""
    gen = torch.Generator().manual_seed(0)
    h = model.config.hidden_size

    def rows(n: int) -> torch.Tensor:
        out = torch.randn(n, h, generator=gen)
        out[-1] = model.embed_tokens(torch.tensor([TOKENS.seg]))[0]
        return out

    return rows(SYSTEM_ROWS), rows(FRAME_ROWS), rows(AUDIO_ROWS)


def fork(session: StreamingSession) -> StreamingSession:
    """An independent copy of a session's stream state (the model is shared)."""
    twin = copy.copy(session)
    twin.cache = copy.deepcopy(session.cache)
    twin.segments = copy.copy(session.segments)
    twin.trigger = copy.deepcopy(session.trigger)
    return twin


def timed_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def naive_second(model, history_rows: int):
    """One stream second without a cache: a forward over the whole history (last row's logits), done twice (after
    the frame segment and after the audio segment)."""
    user = torch.randn(history_rows, model.config.hidden_size, generator=torch.Generator().manual_seed(1))
    agent = model.embed_tokens(torch.full((history_rows,), TOKENS.pad))

    def step() -> None:
        for _ in range(2):
            hidden = model.llm.model(inputs_embeds=model.fuse(agent, user)[None]).last_hidden_state
            model.llm.lm_head(hidden[:, -1:])
            model.informative_head(hidden)

    return step


def run(quick: bool) -> dict:
    torch.manual_seed(0)
    model = tiny_model(seed=0, encoders=False)
    window = WINDOW_S * ROWS_PER_SECOND
    seconds = QUICK_S if quick else 3600
    # The late figure is taken at the end of the stream: the window has been full for 2 window lengths by then.
    assert seconds >= 3 * WINDOW_S
    system, frame, audio = stream_rows(model)
    session = StreamingSession(model, TOKENS, proactive=False, window_tokens=window, max_segment_tokens=FRAME_ROWS)
    rss_early = 0.0

    def one_second(s: StreamingSession) -> None:
        s.feed(frame)
        s.feed(audio)

    with torch.no_grad():
        session.start([system])
        for second in range(seconds):
            one_second(session)
            assert session.max_position < session.position_bound
            if second + 1 == EARLY_S:
                early_state = fork(session)
                gc.collect()
                rss_early = rss_mb()
        gc.collect()
        rss_late = rss_mb()
        early_ms, late_ms = [], []
        for _ in range(ROUNDS):
            twin = fork(early_state)
            early_ms.append(timed_ms(lambda twin=twin: one_second(twin)))
            late_ms.append(timed_ms(lambda: one_second(session)))
        naive_late_s = min(seconds, NAIVE_CAP_S)
        naive_early_step = naive_second(model, SYSTEM_ROWS + EARLY_S * ROWS_PER_SECOND)
        naive_late_step = naive_second(model, SYSTEM_ROWS + naive_late_s * ROWS_PER_SECOND)
        naive_early_ms, naive_late_ms = [], []
        for _ in range(3):
            naive_early_ms.append(timed_ms(naive_early_step))
            naive_late_ms.append(timed_ms(naive_late_step))
    early, late = statistics.median(early_ms), statistics.median(late_ms)
    naive_early, naive_late = statistics.median(naive_early_ms), statistics.median(naive_late_ms)
    return {
        "stream_s": seconds,
        "window_tokens": window,
        "window_s": WINDOW_S,
        "position_bound": session.position_bound,
        "max_position": session.max_position,
        "early_ms": early,
        "late_ms": late,
        "late_early_ratio": late / early,
        "naive_early_ms": naive_early,
        "naive_late_ms": naive_late,
        "naive_late_s": naive_late_s,
        "naive_late_early_ratio": naive_late / naive_early,
        "rss_growth_mb": rss_late - rss_early,
    }
