"""Per-segment cost and memory of an unbounded stream: bounded StreamingSession vs naive re-prefill.

Tiny random ViSpeak on CPU. One stream second = a frame segment (64 visual rows + seg) and an audio segment
(12 rows + seg), as the template lays them out, after the `vispeak` system prompt (the attention sink). The window
holds 8 s of stream, so it is full before the 10 s reference point: the ratio then isolates growth with stream
length. (A larger window only raises the flat steady-state cost, by the attention over more retained keys: with
the largest window inside the trained 6,200 positions, about 78 s, the steady state costs about 2.4x the 10 s
figure on this tiny model, where attention dominates; it stays flat after the window fills either way.)

- late_early_ratio: session cost of one stream second late in the stream / at 10 s. Goal <= 1.15.
- naive_late_early_ratio: the same for re-prefilling the whole history every second (what a cache-less loop
  pays); measured at 10 s and at the late point, capped at `naive_late_s` in the full run (an hour of history in one
  forward is out of reach on CPU; the ratio is already far above the goal there).
- rss_growth_mb: resident memory at the end of the stream minus at 10 s. Goal <= 50 MB.
Full run: 1 h of stream. --quick: 60 s of stream (7.5 windows), the late figure taken only after the window has been
full for 2 window lengths (from 3 windows on).
"""

from __future__ import annotations

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
NAIVE_CAP_S = 600
TOKENS = SpecialTokens(seg=1, pad=0, im_end=2, proactive=3)


def rss_mb() -> float:
    """Current resident set size (Linux /proc; elsewhere the peak, which can only overstate growth)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stream_rows(model, seconds: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random user rows for the system prompt, one frame segment and one audio segment (reused every second)."""
    gen = torch.Generator().manual_seed(0)
    h = model.config.hidden_size

    def rows(n: int) -> torch.Tensor:
        out = torch.randn(n, h, generator=gen)
        out[-1] = model.embed_tokens(torch.tensor([TOKENS.seg]))[0]
        return out

    return rows(SYSTEM_ROWS), rows(FRAME_ROWS), rows(AUDIO_ROWS)


def naive_second_ms(model, history_rows: int, repeats: int = 3) -> float:
    """Cost of one stream second without a cache: a forward over the whole history (last row's logits)."""
    user = torch.randn(history_rows, model.config.hidden_size, generator=torch.Generator().manual_seed(1))
    agent = model.embed_tokens(torch.full((history_rows,), TOKENS.pad))
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            hidden = model.llm.model(inputs_embeds=model.fuse(agent, user)[None]).last_hidden_state
            model.llm.lm_head(hidden[:, -1:])
            model.informative_head(hidden)
            times.append(time.perf_counter() - start)
    # Two re-prefills per stream second (after the frame segment and after the audio segment), the second longer.
    return 2 * statistics.median(times) * 1000


def run(quick: bool) -> dict:
    torch.manual_seed(0)
    model = tiny_model(seed=0, encoders=False)
    window = WINDOW_S * ROWS_PER_SECOND
    seconds = QUICK_S if quick else 3600
    late_from = 3 * WINDOW_S if quick else seconds - 60  # quick: window full (1x) + 2 window lengths
    system, frame, audio = stream_rows(model, seconds)
    session = StreamingSession(model, TOKENS, proactive=False, window_tokens=window, max_segment_tokens=FRAME_ROWS)
    per_second_ms: list[float] = []
    rss_early = 0.0
    with torch.no_grad():
        session.start([system])
        for second in range(seconds):
            start = time.perf_counter()
            session.feed(frame)
            session.feed(audio)
            per_second_ms.append((time.perf_counter() - start) * 1000)
            if second + 1 == EARLY_S:
                gc.collect()
                rss_early = rss_mb()
            assert session.max_position < session.position_bound
    gc.collect()
    rss_late = rss_mb()
    early = statistics.median(per_second_ms[EARLY_S - 2 : EARLY_S + 3])
    late = statistics.median(per_second_ms[late_from:])
    naive_late_s = min(seconds, NAIVE_CAP_S)
    naive_early = naive_second_ms(model, SYSTEM_ROWS + EARLY_S * ROWS_PER_SECOND)
    naive_late = naive_second_ms(model, SYSTEM_ROWS + naive_late_s * ROWS_PER_SECOND)
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
