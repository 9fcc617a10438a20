"""Training data and losses against the spec: answer placement, LM labels only on answer tokens, informative labels
only on frame rows (1 from the midpoint to the end of the window), sigmoid focal loss, the demo tokenizer."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from vispeak_ros.model.tokenizer import IM_END, MARKERS, SEG_TOKEN
from vispeak_ros.model.vispeak import AUDIO_TOKEN_INDEX, IMAGE_TOKEN_INDEX
from vispeak_ros.training import world
from vispeak_ros.training.data import IGNORE, build_sample
from vispeak_ros.training.losses import sigmoid_focal_loss, streaming_loss
from vispeak_ros.training.tokenizer_build import PAD, build_tokenizer, save_tokenizer


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return save_tokenizer(build_tokenizer(), Path(tmp_path_factory.mktemp("tok")))


def test_tokenizer_special_strings_are_single_tokens(tok):
    for text in (SEG_TOKEN, *MARKERS, IM_END, "<|im_start|>", PAD):
        assert len(tok.encode(text)) == 1, text
    specials = tok.special_tokens()
    assert tok.tokenizer.id_to_token(specials.pad) == PAD
    unk = tok.tokenizer.token_to_id("<unk>")
    for text in world.vocabulary():
        ids = tok.encode(text)
        assert unk not in ids, text
        assert tok.decode(ids) == " ".join(text.split())
    assert tok.decode_answer([specials.proactive, *tok.encode("Nice thumbs up!"), specials.im_end]) == "Nice thumbs up!"


def test_proactive_answer_placement_and_labels(tok):
    stream = world.generate("wake_up", 11, size=(160, 160), fps=1.0)
    sample = build_sample(stream, tok)
    specials = tok.special_tokens()
    event = stream.events[0]
    mid, end = event.label_window
    user = sample.user_ids.tolist()
    seg_rows = [i for i, t in enumerate(user) if t == specials.seg]
    assert seg_rows == sample.block_ends
    # frame blocks: 64 image placeholders then seg; audio blocks: 12 audio placeholders then seg
    frames = [i for i, b in enumerate(sample.blocks) if b.kind == "frame"]
    for i in frames:
        seg = sample.block_ends[i]
        assert user[seg - 64 : seg] == [IMAGE_TOKEN_INDEX] * 64
        assert user[seg + 1 : seg + 13] == [AUDIO_TOKEN_INDEX] * 12 and user[seg + 13] == specials.seg
    # the answer starts right after the seg of the first frame inside [mid, end]
    k = math.ceil(mid)
    assert mid <= k <= end
    seg = sample.block_ends[next(i for i in frames if sample.blocks[i].second == k)]
    answer = [specials.proactive, *tok.encode(event.answer), specials.im_end]
    agent = sample.agent_ids.tolist()
    assert agent[seg + 1 : seg + 1 + len(answer)] == answer
    assert all(t == specials.pad for j, t in enumerate(agent) if not seg < j <= seg + len(answer))
    lm = sample.lm_labels.tolist()
    assert lm[seg : seg + len(answer)] == answer  # row p predicts the agent token of row p+1
    assert all(t == IGNORE for j, t in enumerate(lm) if not seg <= j < seg + len(answer))
    # informative labels: only at the last visual token of each frame, 1 iff mid <= frame time <= end
    info = sample.info_labels.tolist()
    rows = {sample.block_ends[i] - 1: sample.blocks[i].second for i in frames}
    for j, value in enumerate(info):
        if j in rows:
            assert value == float(mid <= rows[j] <= end), (j, rows[j])
        else:
            assert value == IGNORE
    assert sum(v == 1.0 for v in info) >= 1


def test_text_answer_placement(tok):
    stream = world.generate("point", 5, size=(160, 160), fps=1.0)
    sample = build_sample(stream, tok)
    specials = tok.special_tokens()
    event = stream.events[0]
    text_block = next(i for i, b in enumerate(sample.blocks) if b.kind == "text")
    assert sample.blocks[text_block].second == math.floor(event.context[-1].time)
    seg = sample.block_ends[text_block]
    answer = [specials.text_answer, *tok.encode(event.answer), specials.im_end]
    assert sample.agent_ids[seg + 1 : seg + 1 + len(answer)].tolist() == answer
    # visual reference answers the text: no positive informative label
    assert not bool((sample.info_labels == 1.0).any())


def test_interrupt_prefills_the_answer_being_spoken(tok):
    stream = world.generate("interrupt", 5, size=(160, 160), fps=1.0)
    sample = build_sample(stream, tok)
    markers = [a.marker for a in sample.answers]
    assert markers == ["☜", "☟"]
    assert sample.answers[1].text == "Okay, I'll stop."
    long_answer = next(t.text for t in stream.turns if t.role == "assistant")
    seg = sample.block_ends[sample.answers[0].block]
    n = len(tok.encode(long_answer))
    assert sample.agent_ids[seg + 2 : seg + 2 + n].tolist() == tok.encode(long_answer)


def test_sigmoid_focal_loss_matches_the_formula():
    logits = torch.tensor([0.3, -1.2, 2.0, 5.0])
    targets = torch.tensor([1.0, 0.0, 1.0, float(IGNORE)])

    def one(x: float, y: float) -> float:
        p = 1 / (1 + math.exp(-x))
        pt = p if y == 1 else 1 - p
        alpha = 0.25 if y == 1 else 0.75
        return -alpha * (1 - pt) ** 2 * math.log(pt)

    expected = (one(0.3, 1) + one(-1.2, 0) + one(2.0, 1)) / 3
    assert float(sigmoid_focal_loss(logits, targets)) == pytest.approx(expected, rel=1e-5)
    assert float(sigmoid_focal_loss(logits, torch.full((4,), float(IGNORE)))) == 0.0


def test_streaming_loss_adds_lm_and_focal_with_weight_one():
    logits = torch.randn(5, 7)
    labels = torch.tensor([IGNORE, 3, IGNORE, 1, IGNORE])
    info = torch.randn(5)
    info_labels = torch.tensor([IGNORE, 1.0, 0.0, IGNORE, IGNORE])
    total, lm, focal = streaming_loss(logits, info, labels, info_labels)
    assert float(lm) == pytest.approx(float(torch.nn.functional.cross_entropy(logits[[1, 3]], labels[[1, 3]])))
    assert float(total) == pytest.approx(float(lm) + float(focal))


def test_demo_recipe_leaves_the_first_half_of_an_event_window_unlabelled(tok):
    """`onset_labels=False`: frames showing the gesture before the label window are neither 0 nor 1."""
    stream = world.generate("fall", 5, size=(160, 160), fps=1.0)
    event = stream.events[0]
    t1, _ = event.timespan
    mid, end = event.label_window
    spec, demo = build_sample(stream, tok), build_sample(stream, tok, onset_labels=False)
    for block, row in zip(spec.blocks, spec.block_ends, strict=True):
        if block.kind != "frame":
            continue
        label, unlabelled = float(spec.info_labels[row - 1]), float(demo.info_labels[row - 1])
        if t1 <= block.second < mid:
            assert label == 0.0 and unlabelled == IGNORE, block.second
        else:
            assert unlabelled == label == float(mid <= block.second <= end), block.second


def test_answer_start_rows_cover_the_rows_under_each_answers_first_tokens(tok):
    from vispeak_ros.training.trainer import TYPING_ROWS, answer_start_rows

    stream = world.generate("wake_up", 11, size=(160, 160), fps=1.0)
    sample = build_sample(stream, tok)
    marker = int(torch.nonzero(sample.agent_ids == tok.special_tokens().proactive).flatten()[0])
    mask = answer_start_rows(sample, set(tok.special_tokens().markers))
    assert mask.nonzero().flatten().tolist() == list(range(marker, marker + TYPING_ROWS))


def test_idle_streams_are_appended_event_free_and_long():
    from dataclasses import replace

    from vispeak_ros.training.trainer import Recipe, training_streams

    recipe = replace(Recipe(), streams_per_scenario=1, sessions=0, idle_streams=2, idle_seconds=20.0)
    streams = training_streams(recipe)
    assert len(streams) == len(world.SCENARIOS) + 2
    assert all(s.scenario == "none" and not s.events and s.duration_s == 20.0 for s in streams[-2:])
    assert {s.name for s in streams[-2:]}.isdisjoint(s.name for s in streams[:-2])
