"""The quantization agreement gate: a lower-precision graph is accepted only if it decides like FP32.

Max error says little about a streaming assistant: what matters is whether it speaks at the same moments and says
the same kind of thing. The gate runs the FP32 reference and the candidate backend through the same `Assistant`
over the same recorded streams (synthetic world streams by default: every scenario, held-out seeds) and compares
- **trigger decisions**: at every frame seg row, whether the trigger rule fired (`InformativeRecord.triggered`),
  paired by segment index: agreement = equal decisions / decisions;
- **event types**: the typed events (segment index, behaviour) of both runs as multisets:
  agreement = common events / max(events in either run) (1.0 when neither run answered).
The candidate is accepted when both reach the stated rates (defaults: 0.98 for triggers, 0.95 for event types).
The report also gives the largest informative-probability difference, for information only.
The same gate judges TensorRT engines: it takes any two backends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

from vispeak_ros.core.segmenter import Segment, Segmenter, SegmenterConfig
from vispeak_ros.runtime.backends.base import Backend
from vispeak_ros.runtime.config import RuntimeConfig
from vispeak_ros.runtime.outputs import InformativeRecord, TypedEvent

MIN_TRIGGER_AGREEMENT = 0.98
MIN_EVENT_AGREEMENT = 0.95
HELDOUT_SEED = 1_000_000_000  # the first held-out seed of the synthetic world


@dataclass
class Decisions:
    """What one backend decided on one stream."""

    name: str
    triggers: dict[int, bool] = field(default_factory=dict)  # segment index -> fired at its frame seg row
    probabilities: dict[int, float] = field(default_factory=dict)
    events: list[tuple[int, str]] = field(default_factory=list)  # (segment index, behaviour name)


@dataclass
class GateReport:
    streams: int
    frame_decisions: int
    trigger_agreement: float
    events_reference: int
    events_candidate: int
    event_agreement: float
    max_probability_diff: float
    min_trigger_agreement: float
    min_event_agreement: float
    accepted: bool

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        verdict = "accepted" if self.accepted else "rejected"
        return (
            f"{verdict}: trigger agreement {self.trigger_agreement:.3f} (>= {self.min_trigger_agreement}) over "
            f"{self.frame_decisions} frame decisions, event-type agreement {self.event_agreement:.3f} "
            f"(>= {self.min_event_agreement}; {self.events_reference} reference / {self.events_candidate} candidate "
            f"events) on {self.streams} streams; max informative probability diff {self.max_probability_diff:.2e}"
        )


def synthetic_streams(scenarios: Sequence[str] | None = None, seeds: int = 1) -> list[tuple[str, list[Segment]]]:
    """Held-out synthetic world streams (every scenario by default) cut into segments by the segmenter."""
    from vispeak_ros.training import world

    out = []
    for scenario in scenarios or world.SCENARIOS:
        for k in range(seeds):
            stream = world.generate(scenario, HELDOUT_SEED + k, split="heldout")
            out.append((f"{scenario}-{k}", stream_segments(stream)))
    return out


def stream_segments(stream) -> list[Segment]:
    """A world stream's frames, microphone chunks and user texts through the segmenter, in stamp order."""
    items = [(stamp, 0, "frame", frame) for stamp, frame in stream.frames]
    items += [(stamp, 1, "audio", chunk) for stamp, chunk in stream.audio_chunks()]
    items += [(stamp, 2, "text", text) for stamp, text in stream.user_texts]
    segmenter = Segmenter(SegmenterConfig())
    segments: list[Segment] = []
    for stamp, _, kind, value in sorted(items, key=lambda item: (item[0], item[1])):
        add = {"frame": segmenter.add_frame, "audio": segmenter.add_audio, "text": segmenter.add_text}[kind]
        segments += add(stamp, value)
    return segments + segmenter.flush()


def record(
    make_backend: Callable[[], Backend], streams: Iterable[tuple[str, list[Segment]]], config: RuntimeConfig
) -> list[Decisions]:
    """Run a fresh assistant per stream over a fresh backend and keep its decisions."""
    from vispeak_ros.runtime.assistant import Assistant

    out = []
    for name, segments in streams:
        assistant = Assistant(config, make_backend())
        decisions = Decisions(name)
        for segment in segments:
            for output in assistant.process(segment):
                if isinstance(output, InformativeRecord):
                    decisions.triggers[output.segment_index] = output.triggered
                    decisions.probabilities[output.segment_index] = output.probability
                elif isinstance(output, TypedEvent):
                    decisions.events.append((output.event.segment_index, output.event.behaviour.name))
        out.append(decisions)
    return out


def compare(
    reference: Sequence[Decisions],
    candidate: Sequence[Decisions],
    *,
    min_trigger_agreement: float = MIN_TRIGGER_AGREEMENT,
    min_event_agreement: float = MIN_EVENT_AGREEMENT,
) -> GateReport:
    if [d.name for d in reference] != [d.name for d in candidate]:
        raise ValueError("reference and candidate were recorded on different streams")
    decisions = agree = 0
    events_ref = events_cand = common = 0
    max_diff = 0.0
    for ref, cand in zip(reference, candidate, strict=True):
        for index in set(ref.triggers) | set(cand.triggers):
            decisions += 1
            agree += index in ref.triggers and ref.triggers.get(index) == cand.triggers.get(index)
            if index in ref.probabilities and index in cand.probabilities:
                max_diff = max(max_diff, abs(ref.probabilities[index] - cand.probabilities[index]))
        shared = sum((Counter(ref.events) & Counter(cand.events)).values())
        events_ref, events_cand, common = events_ref + len(ref.events), events_cand + len(cand.events), common + shared
    trigger_agreement = agree / decisions if decisions else 1.0
    event_agreement = common / max(events_ref, events_cand) if events_ref or events_cand else 1.0
    return GateReport(
        streams=len(reference),
        frame_decisions=decisions,
        trigger_agreement=trigger_agreement,
        events_reference=events_ref,
        events_candidate=events_cand,
        event_agreement=event_agreement,
        max_probability_diff=max_diff,
        min_trigger_agreement=min_trigger_agreement,
        min_event_agreement=min_event_agreement,
        accepted=trigger_agreement >= min_trigger_agreement and event_agreement >= min_event_agreement,
    )


def run_gate(
    make_reference: Callable[[], Backend],
    make_candidate: Callable[[], Backend],
    streams: Sequence[tuple[str, list[Segment]]],
    config: RuntimeConfig | None = None,
    **thresholds: float,
) -> GateReport:
    """Record both backends on the same streams and compare their decisions."""
    config = config or RuntimeConfig()
    return compare(record(make_reference, streams, config), record(make_candidate, streams, config), **thresholds)
