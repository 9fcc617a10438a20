"""Post-training calibration of the informative head's scale for the official trigger rule.

The trigger fires when the sum of the last three frame probabilities exceeds 0.35, so every frame of an idle stream
must stay well below 0.12. A tiny model trained minutes with the focal loss (which barely pushes easy negatives)
ranks event frames above idle ones but sits near the base rate everywhere. Multiplying the head's last layer (no
bias: logit -> c * logit) by one scalar keeps the ranking and moves the operating point; `c` is chosen on training
streams by simulating the trigger rule (timely first answers minus false answers on event-free streams).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vispeak_ros.core.trigger import DEFAULT_THRESHOLD, QUEUE_LENGTH
from vispeak_ros.model.vispeak import ViSpeakForCausalLM
from vispeak_ros.training import world
from vispeak_ros.training.data import Sample, StreamFeatures, is_proactive, user_embeddings

SCALES: tuple[float, ...] = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0)
FALSE_WEIGHT = 1.0  # score lost per false answer per event-free minute


@torch.no_grad()
def frame_logits(model: ViSpeakForCausalLM, sample: Sample, feats: StreamFeatures) -> list[tuple[int, float]]:
    """(second, informative logit at the frame's last visual token) for each frame of a sample (teacher forced)."""
    _logits, info = model(sample.agent_ids[None], user_embeddings(model, sample, feats)[None])
    assert info is not None
    return [(b.second, float(info[0, e - 1])) for b, e in zip(sample.blocks, sample.block_ends, strict=True)
            if b.kind == "frame"]  # fmt: skip


def simulate(frames: Sequence[tuple[int, float]], scale: float, threshold: float = DEFAULT_THRESHOLD) -> list[int]:
    """Seconds at which the trigger rule fires (queue of 3, cleared after each answer, which lasts one segment)."""
    fired: list[int] = []
    queue: list[float] = []
    skip = -1
    for second, logit in frames:
        if second <= skip:
            continue
        queue = ([*queue, float(torch.sigmoid(torch.tensor(scale * logit)))])[-QUEUE_LENGTH:]
        if sum(queue) > threshold:
            fired.append(second)
            queue = []
            skip = second + 1
    return fired


def calibration_score(
    streams: Sequence[world.Stream], frames: Sequence[Sequence[tuple[int, float]]], scale: float
) -> float:
    """Timely first answers per event minus false answers per event-free minute (both on training streams)."""
    hits = events = 0
    false = 0
    minutes = 0.0
    for stream, rows in zip(streams, frames, strict=True):
        fired = simulate(rows, scale)
        if not stream.events:
            false += len(fired)
            minutes += stream.duration_s / 60.0
            continue
        for event in stream.events:
            if not is_proactive(event.behaviour):
                continue
            mine = [t for t in fired if event.clip[0] <= t < event.clip[1]]
            events += 1
            hits += bool(mine) and event.timely(float(mine[0]))
    return hits / max(events, 1) - FALSE_WEIGHT * false / max(minutes, 1e-9)


def calibrate(
    model: ViSpeakForCausalLM,
    streams: Sequence[world.Stream],
    samples: Sequence[Sample],
    features: Sequence[StreamFeatures],
    scales: Sequence[float] = SCALES,
) -> float:
    """Pick the best scale on these streams, apply it to the head's last layer in place, return it."""
    model.eval()
    frames = [frame_logits(model, s, f) for s, f in zip(samples, features, strict=True)]
    best = max(scales, key=lambda c: calibration_score(streams, frames, c))
    head = model.informative_head
    assert head is not None
    with torch.no_grad():
        head[2].weight.mul_(best)
    return best
