"""Tokenizer set-up (special strings must be single tokens), system prompts and the streaming template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from vispeak_ros.model import SYSTEM_PROMPTS, CheckpointError, StreamTemplate, load_tokenizer
from vispeak_ros.model.vispeak import AUDIO_TOKEN_INDEX, IMAGE_TOKEN_INDEX

WORDS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", ">Note", "☜", "☞", "☟", "hello", "robot", "?"]


def write_tokenizer(folder: Path, words: list[str], split_punctuation: bool = False, pad: str | None = None) -> Path:
    """A small word-level tokenizer.json (a real `tokenizers` model) plus tokenizer_config.json."""
    vocab = {w: i for i, w in enumerate(words)} | {"[UNK]": len(words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace() if split_punctuation else pre_tokenizers.WhitespaceSplit()
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    if pad is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps({"pad_token": pad}))
    return folder


def test_special_tokens_are_read_from_the_tokenizer(tmp_path):
    tokenizer = load_tokenizer(write_tokenizer(tmp_path, WORDS, pad="<|endoftext|>"))
    special = tokenizer.special_tokens()
    assert (special.seg, special.pad, special.im_end) == (3, 0, 2)
    assert (special.text_answer, special.audio_answer, special.proactive) == (4, 5, 6)
    assert special.vocab_limit == len(WORDS) + 1
    assert tokenizer.decode_answer([6, 7, 8, 2, 7]) == "hello robot"


def test_a_seg_token_that_splits_is_refused(tmp_path):
    words = [w for w in WORDS if w != ">Note"] + [">", "Note"]
    tokenizer = load_tokenizer(write_tokenizer(tmp_path, words, split_punctuation=True, pad="<|endoftext|>"))
    with pytest.raises(CheckpointError, match="'>Note' is 2 tokens"):
        tokenizer.special_tokens()


def test_a_missing_pad_token_is_an_error_only_when_ids_are_needed(tmp_path):
    tokenizer = load_tokenizer(write_tokenizer(tmp_path, WORDS))
    assert tokenizer.encode("hello robot") == [7, 8]
    with pytest.raises(CheckpointError, match="pad_token"):
        tokenizer.special_tokens()


def test_no_tokenizer_files_means_none(tmp_path):
    assert load_tokenizer(tmp_path) is None


def test_system_prompts_are_the_official_strings():
    assert set(SYSTEM_PROMPTS) == {"image", "video", "audio", "text", "online", "vispeak"}
    assert SYSTEM_PROMPTS["vispeak"] == (
        "You are an AI robot and now processing online videos. You should be aware of anomaly events, fun things, "
        "and users actions and gestures to provide in-time interaction with users and necessary assistance "
        "effectively."
    )
    assert SYSTEM_PROMPTS["online"].startswith("You are an AI robot and now processing online videos. Users will ask")
    assert SYSTEM_PROMPTS["video"].endswith("Please note that you are seeing the video, not the image.")


def test_template_segments_end_with_the_seg_token(tmp_path):
    words = list(dict.fromkeys([*WORDS, *SYSTEM_PROMPTS["vispeak"].split()]))
    template = StreamTemplate(load_tokenizer(write_tokenizer(tmp_path, words, pad="<|endoftext|>")))
    seg = 3
    system = template.system("vispeak")
    assert system[-1] == seg and len(system) == len(SYSTEM_PROMPTS["vispeak"].split()) + 1
    assert template.frame() == [IMAGE_TOKEN_INDEX] * 64 + [seg]
    assert template.audio() == [AUDIO_TOKEN_INDEX] * 12 + [seg]
    assert template.text("hello robot ?") == [7, 8, 9, seg]
    with pytest.raises(ValueError, match="system prompt"):
        template.system("chat")
