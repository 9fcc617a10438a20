"""The agreement gate: its arithmetic on known decisions, and a damaged graph rejected on real streams."""

from __future__ import annotations

from pathlib import Path

import pytest

from vispeak_ros.engines.gate import Decisions, compare, record, synthetic_streams
from vispeak_ros.engines.variants import damage_graph, quantize_int8


def test_agreement_counts_trigger_decisions_and_event_types():
    ref = [Decisions("a", {0: False, 1: True, 2: False, 3: False}, {}, [(1, "WAKE_UP")])]
    same = [Decisions("a", {0: False, 1: True, 2: False, 3: False}, {}, [(1, "WAKE_UP")])]
    report = compare(ref, same)
    assert (report.trigger_agreement, report.event_agreement, report.accepted) == (1.0, 1.0, True)
    other = [Decisions("a", {0: False, 1: False, 2: True, 3: False}, {}, [(2, "WAKE_UP"), (3, "GESTURE")])]
    report = compare(ref, other)
    assert report.trigger_agreement == 0.5 and report.event_agreement == 0.0 and not report.accepted
    assert compare(ref, same, min_trigger_agreement=1.0, min_event_agreement=1.0).accepted
    silent = [Decisions("a", {0: False}, {}, [])]
    assert compare(silent, silent).event_agreement == 1.0  # neither run answered: full agreement
    with pytest.raises(ValueError, match="different streams"):
        compare(ref, [Decisions("b")])


@pytest.fixture(scope="module")
def backends(demo_model, demo_export: Path):
    from vispeak_ros.runtime.backends.factory import decision_options
    from vispeak_ros.runtime.backends.onnx_backend import OnnxBackend
    from vispeak_ros.runtime.config import RuntimeConfig

    damage_graph(demo_export / "llm_step.onnx", demo_export / "llm_step.damaged.onnx", noise=0.5, seed=0)
    quantize_int8(demo_export / "llm_step.onnx", demo_export / "llm_step.int8.onnx")
    options = decision_options(RuntimeConfig())

    def make(step_file: str | None = None):
        return lambda: OnnxBackend(
            demo_export, demo_model.tokenizer, step_file=step_file, verify_files=False, **options
        )

    return make


@pytest.fixture(scope="module")
def streams():
    return synthetic_streams(["thumbs_up", "interrupt"])


@pytest.fixture(scope="module")
def reference(backends, streams):
    """The FP32 graph's decisions, recorded once for both candidates."""
    from vispeak_ros.runtime.config import RuntimeConfig

    return record(backends(), streams, RuntimeConfig())


def run_gate(reference, make_candidate, streams):
    from vispeak_ros.runtime.config import RuntimeConfig

    return compare(reference, record(make_candidate, streams, RuntimeConfig()))


def test_gate_rejects_a_damaged_graph(backends, streams, reference):
    report = run_gate(reference, backends("llm_step.damaged.onnx"), streams)
    assert not report.accepted
    assert report.trigger_agreement < 0.98 or report.event_agreement < 0.95
    assert report.frame_decisions == sum(len(s) for _, s in streams)  # one decision per frame segment


def test_gate_accepts_dynamic_int8_on_the_demo_model(backends, streams, reference):
    """Measured: INT8 weights move the informative probabilities by about 2e-2, and no decision changes."""
    report = run_gate(reference, backends("llm_step.int8.onnx"), streams)
    assert report.accepted, report.summary()
    assert 0.0 < report.max_probability_diff < 0.1  # it did run a different graph
    assert report.events_reference > 0
