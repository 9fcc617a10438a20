"""Official annotation items become two-stream rows exactly as the spec places answers and labels: an answer starts
on the row after the seg token of the last eligible segment at or before its time (text for ☜, frames for ☟, audio
for ☞), LM labels only on answer tokens (plus pad after unanswered audio chunks in audio-proactive data),
informative labels 0 on every frame and 1 from the midpoint to the end of a proactive answer's timespan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vispeak_ros.model.vispeak import AUDIO_TOKEN_INDEX, IMAGE_TOKEN_INDEX
from vispeak_ros.training.data import IGNORE
from vispeak_ros.training.recipe import tiny
from vispeak_ros.training.recipe.formats import FormatError, Layout, build_rows, check_runs, data_type
from vispeak_ros.training.tokenizer_build import build_tokenizer, save_tokenizer

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT.parent / "shared" / "data" / "vispeak_bench" / "annotations"
FOUR_SECONDS = Layout(frame_times=(0.0, 1.0, 2.0, 3.0), audio_per_frame=(1, 1, 1, 1))


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return save_tokenizer(build_tokenizer(tiny.texts()), tmp_path_factory.mktemp("tok"))


def seg_rows(rows, kind):
    return [(b, end) for b, end in zip(rows.sample.blocks, rows.sample.block_ends, strict=True) if b.kind == kind]


def answer_at(rows, tok, seg, marker, text):
    """The answer's tokens sit on agent rows seg+1.. and as labels on rows seg.. (label p = agent token of p+1)."""
    s = rows.sample
    tokens = [tok.single_id(marker), *tok.encode(text), tok.special_tokens().im_end]
    assert s.agent_ids[seg + 1 : seg + 1 + len(tokens)].tolist() == tokens
    assert s.lm_labels[seg : seg + len(tokens)].tolist() == tokens
    return set(range(seg, seg + len(tokens)))


def only_labels(rows, labelled):
    others = [i for i in range(len(rows.sample.lm_labels)) if i not in labelled]
    assert all(int(rows.sample.lm_labels[i]) == IGNORE for i in others)


def frame_info(rows):
    return [float(rows.sample.info_labels[end - 1]) for _, end in seg_rows(rows, "frame")]


def test_streaming_question_answer_follows_its_text_segment(tok):
    item = tiny.STREAMING[0]
    rows = build_rows(item, "streaming", FOUR_SECONDS, tok, name="qa")
    check_runs(rows)
    assert rows.system == "online"
    kinds = [b.kind for b in rows.sample.blocks]
    # the text at 1.0 s follows frame 1 (stable sort) and precedes its audio chunk (1.1 s)
    assert kinds == ["system", "frame", "audio", "frame", "text", "audio", "frame", "audio", "frame", "audio"]
    (_, text_seg), = seg_rows(rows, "text")  # fmt: skip
    labelled = answer_at(rows, tok, text_seg, "☜", "A red ball.")
    only_labels(rows, labelled)
    assert bool((rows.sample.info_labels == IGNORE).all())  # question answering: no informative labels


def test_streaming_proactive_answer_and_informative_labels(tok):
    rows = build_rows(tiny.STREAMING[1], "streaming", FOUR_SECONDS, tok, name="proactive")
    assert rows.system == "vispeak"
    frames = seg_rows(rows, "frame")
    labelled = answer_at(rows, tok, frames[2][1], "☟", "Hello! How can I help you?")  # 2.5 s: after frame 2
    only_labels(rows, labelled)
    assert frame_info(rows) == [0.0, 0.0, 1.0, 1.0]  # timespan [1, 3]: midpoint 2 .. end 3
    labelled_info = int((rows.sample.info_labels != IGNORE).sum())
    assert labelled_info == 4  # only the last visual row of each frame


def test_proactive_answers_only_after_frames_later_than_the_question(tok):
    item = {"proactive": True, "conversations": [
        {"from": "human", "value": "Tell me a joke.", "time": 1.5},
        {"from": "gpt", "value": "Nice thumbs up!", "time": 2.2, "timespan": [0.0, 3.0]}]}  # fmt: skip
    rows = build_rows(item, "streaming", FOUR_SECONDS, tok)
    frames = seg_rows(rows, "frame")
    answer_at(rows, tok, frames[2][1], "☟", "Nice thumbs up!")
    assert frame_info(rows) == [0.0, 0.0, 1.0, 1.0]  # frame 1 is in [1.5, 3] but not after the question


def test_audio_proactive_text_question_then_visual_answer(tok):
    rows = build_rows(tiny.GESTURE[0], "audio_proactive", Layout(frame_times=(0.0, 1.0, 2.0, 3.0)), tok)
    assert rows.system == "vispeak"
    (_, text_seg), = seg_rows(rows, "text")  # fmt: skip
    frames = seg_rows(rows, "frame")
    labelled = answer_at(rows, tok, text_seg, "☜", "Why did the robot cross the road?")
    labelled |= answer_at(rows, tok, frames[2][1], "☟", "Nice thumbs up!")
    only_labels(rows, labelled)
    assert frame_info(rows) == [0.0, 0.0, 1.0, 1.0]


def test_audio_proactive_spoken_question_answers_after_audio_and_labels_silence(tok):
    rows = build_rows(tiny.GESTURE[1], "audio_proactive", FOUR_SECONDS, tok)
    audio = seg_rows(rows, "audio")
    assert not seg_rows(rows, "text")  # the question is in the video's audio, not a text segment
    labelled = answer_at(rows, tok, audio[1][1], "☞", "Why did the robot cross the road?")  # chunk at 1.1 s <= 1.2
    pad = tok.special_tokens().pad
    for _, seg in audio:
        if seg not in labelled:
            assert int(rows.sample.lm_labels[seg]) == pad  # stay silent after every other audio chunk
            labelled.add(seg)
    only_labels(rows, labelled)


def test_visual_reference_has_no_informative_labels(tok):
    rows = build_rows(tiny.REFERENCE[0], "audio_proactive", FOUR_SECONDS, tok, no_visual_proactive=True)
    (_, text_seg), = seg_rows(rows, "text")  # fmt: skip
    answer_at(rows, tok, text_seg, "☜", "That is the red ball.")
    assert bool((rows.sample.info_labels == IGNORE).all())


def test_offline_image_question_answers_on_new_rows_after_the_last_seg(tok):
    rows = build_rows(tiny.OFFLINE[0], "offline", Layout(image_tiles=(3,)), tok)
    check_runs(rows)
    s = rows.sample
    assert rows.system == "image"
    kinds = [b.kind for b in s.blocks]
    assert kinds == ["system", "image", "text"]  # "<image>\nWhat ..." -> image run + seg, then the text + seg
    assert int((s.user_ids == IMAGE_TOKEN_INDEX).sum()) == 3 * 64  # 64 tokens per tile, one run for the image
    last = s.block_ends[-1]
    labelled = answer_at(rows, tok, last, "☜", "The ball is red.")
    only_labels(rows, labelled)
    assert s.user_ids[last + 1 :].tolist() == [tok.special_tokens().pad] * (len(s.user_ids) - last - 1)


def test_offline_video_with_audio_question_uses_the_text_marker(tok):
    layout = Layout(frame_times=(0.0, 1.0), audio_per_frame=(1, 1), audio_chunks=(2,))
    rows = build_rows(tiny.OFFLINE[1], "offline", layout, tok)
    check_runs(rows)
    assert rows.system == "video"
    assert [b.kind for b in rows.sample.blocks] == ["system", "frame", "audio", "frame", "audio", "audio", "audio"]
    assert rows.audios == [("video_audio", 0), ("video_audio", 1), ("audio", 0), ("audio", 1)]
    answer_at(rows, tok, rows.sample.block_ends[-1], "☜", "A person waves at you.")  # the released quirk: ☜


def test_offline_multi_turn_text(tok):
    rows = build_rows(tiny.OFFLINE[2], "offline", Layout(), tok)
    s = rows.sample
    assert rows.system == "text"
    first = s.block_ends[1]
    labelled = answer_at(rows, tok, first, "☜", "Hello there.")
    second = s.block_ends[2]  # the second question follows the first answer's rows
    assert second > max(labelled)
    labelled |= answer_at(rows, tok, second, "☜", "Hello again.")
    only_labels(rows, labelled)


def test_a_later_answer_cuts_an_earlier_one(tok):
    long = " ".join(["Hello there."] * 60)
    item = {"proactive": True, "conversations": [
        {"from": "gpt", "value": long, "time": 0.5, "timespan": [0.0, 1.0]},
        {"from": "gpt", "value": "Hello again.", "time": 1.5, "timespan": [1.0, 2.0]}]}  # fmt: skip
    rows = build_rows(item, "streaming", FOUR_SECONDS, tok)
    frames = seg_rows(rows, "frame")
    labelled = answer_at(rows, tok, frames[1][1], "☟", "Hello again.")
    first_start = frames[0][1]
    spoken_first = set(range(first_start, frames[1][1] + 1))
    only_labels(rows, labelled | spoken_first)
    end = max(labelled) + 1
    assert bool((rows.sample.agent_ids[end + 1 :] == tok.special_tokens().pad).all())


def test_bench_items_of_every_timed_subtask_build(tok):
    files = sorted(p for p in BENCH.glob("*.json") if p.name != "Visual_Reference.json")
    if not files:
        pytest.skip(f"ViSpeak-Bench annotations not found at {BENCH}")
    for path in files:
        for n, item in enumerate(json.loads(path.read_text(encoding="utf-8"))[:5]):
            end = max(t.get("time", 0.0) for t in item["conversations"]) + 2
            layout = Layout(frame_times=tuple(float(k) for k in range(int(end))))
            rows = build_rows(item, data_type({"streaming": True}), layout, tok, name=f"{path.name}[{n}]")
            answers = sum(1 for t in item["conversations"] if t["from"] == "gpt")
            assert len(rows.sample.answers) == answers
            if item.get("proactive"):
                assert bool((rows.sample.info_labels == 1.0).any()) or path.name == "Visual_Termination.json"


def test_bad_items_and_entries_fail_in_one_line(tok):
    with pytest.raises(FormatError, match=r"qa: conversations\[0\] of streaming data needs a numeric 'time'"):
        build_rows({"conversations": [{"from": "human", "value": "hi"}]}, "streaming", FOUR_SECONDS, tok, name="qa")
    with pytest.raises(FormatError, match="never preprocess"):
        data_type({"chat_path": "x/interruption_data.json", "streaming": True})
    assert data_type({"chat_path": "x/interruption_text.json", "audio_proactive": True}) == "audio_proactive"
    with pytest.raises(FormatError, match="more <image> tags"):
        build_rows(tiny.OFFLINE[0], "offline", Layout(), tok)
    assert torch.equal(
        build_rows(tiny.STREAMING[0], "streaming", FOUR_SECONDS, tok).sample.user_ids.eq(AUDIO_TOKEN_INDEX).sum(),
        torch.tensor(4 * 12),
    )
