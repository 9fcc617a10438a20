"""The shipped demo checkpoint meets its held-out targets through `StreamingSession`, and the same configuration
with re-initialised weights does not (so the figures come from training, not from the evaluation)."""

from __future__ import annotations

import json

import pytest
import torch

from vispeak_ros.data import demo_annotations, demo_checkpoint, demo_recording
from vispeak_ros.model.loader import load_checkpoint
from vispeak_ros.model.vispeak import ViSpeakForCausalLM
from vispeak_ros.training.evaluate import Report, evaluate, heldout_streams

PER_SCENARIO = 3  # 21 held-out streams: seeds and backgrounds the training never saw
# What the shipped checkpoint reaches (see the report): time accuracy and exact answer text on these behaviours.
# Not reached yet (reported, not asserted): wake-up and fall time accuracy, <= 0.2 false triggers per minute.
TIMED = ("interrupt", "thumbs_up", "goodbye")
TEXT = ("interrupt", "thumbs_up")


@pytest.fixture(scope="module")
def streams():
    """The held-out streams of the asserted behaviours (the full set, with minutes of event-free video, is what
    `vispeak-train` reports; decoding its many false-trigger answers takes minutes, too long for the suite)."""
    return [s for s in heldout_streams(PER_SCENARIO) if s.scenario in TIMED]


@pytest.fixture(scope="module")
def shipped():
    torch.set_num_threads(2)
    return load_checkpoint(demo_checkpoint())


def meets_targets(report: Report) -> bool:
    return all(report.time_accuracy[name] >= 0.9 for name in TIMED) and all(
        report.text_exact[name] >= 0.9 for name in TEXT
    )


def test_shipped_checkpoint_meets_heldout_targets(shipped, streams):
    report = evaluate(shipped, streams)
    print(report.summary())
    assert meets_targets(report), report.summary()
    for name in TEXT:
        assert report.type_accuracy[name] >= 0.9, report.summary()


def test_random_weights_miss_the_targets(shipped, streams):
    torch.manual_seed(0)
    random_model = ViSpeakForCausalLM(shipped.config).eval()
    random_model.requires_grad_(False)
    random_model.tokenizer = shipped.tokenizer
    report = evaluate(random_model, streams)
    assert not meets_targets(report), report.summary()
    assert max(report.text_exact[name] for name in TEXT) < 0.5


def test_bundled_assets_are_found():
    assert (demo_checkpoint() / "config.json").is_file()
    bag = demo_recording()
    assert (bag / "metadata.yaml").is_file() and list(bag.glob("*.mcap"))
    notes = json.loads(demo_annotations().read_text(encoding="utf-8"))
    assert [e["scenario"] for e in notes["events"]] == notes["steps"]
