"""A small word-level tokenizer for the demo model, built with `tokenizers` from the synthetic world's vocabulary.

The 7B model's Qwen2.5 tokenizer cannot be downloaded here, so the demo checkpoint ships its own: every
whitespace-separated word of `world.vocabulary()` and of the system prompts is one token, and ViSpeak's special strings
(`>Note`, the markers, `<|im_end|>`, `<|im_start|>`, `<|endoftext|>` as pad) are added tokens, each a single id, so
`load_tokenizer` / `ViSpeakTokenizer.special_tokens()` read it exactly like the official one. Word-level encoding
decodes back to the same text (words joined by single spaces), which makes answer exact-match meaningful.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers

from vispeak_ros.model.prompts import SYSTEM_PROMPTS
from vispeak_ros.model.tokenizer import IM_END, MARKERS, SEG_TOKEN, ViSpeakTokenizer, load_tokenizer
from vispeak_ros.training import world

UNK = "<unk>"
PAD = "<|endoftext|>"
IM_START = "<|im_start|>"
SPECIAL_STRINGS: tuple[str, ...] = (PAD, IM_START, IM_END, SEG_TOKEN, *MARKERS)


def corpus_words(texts: Iterable[str] = ()) -> list[str]:
    """Sorted unique words of the world's vocabulary, every system prompt and any extra texts."""
    words: set[str] = set()
    for text in (*world.vocabulary(), *SYSTEM_PROMPTS.values(), *texts):
        words.update(text.split())
    return sorted(words - set(SPECIAL_STRINGS) - {UNK})


def build_tokenizer(extra_texts: Iterable[str] = ()) -> Tokenizer:
    """Word-level vocabulary (<unk> = 0, then the words), plus the special strings as added special tokens."""
    vocab = {UNK: 0}
    for word in corpus_words(extra_texts):
        vocab[word] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(list(SPECIAL_STRINGS))
    return tok


def save_tokenizer(tok: Tokenizer, folder: Path) -> ViSpeakTokenizer:
    """Write tokenizer.json + tokenizer_config.json (pad token) where `load_tokenizer` reads them; return it loaded."""
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    config = {"pad_token": PAD, "eos_token": IM_END, "unk_token": UNK, "model_max_length": 6200}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    loaded = load_tokenizer(folder)
    assert loaded is not None
    return loaded
