"""A real word-level tokenizer for the tiny random model (`vispeak_ros.model.tiny`), so tests and benchmarks can
run the whole runtime on a real (if untrained) model: ViSpeak's special strings, the official prompt words, the
event-typing words and filler words (some ending a sentence), `vocab_size` tokens in all."""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers

from vispeak_ros.model.prompts import SYSTEM_PROMPTS
from vispeak_ros.model.tokenizer import IM_END, MARKERS, SEG_TOKEN, ViSpeakTokenizer
from vispeak_ros.runtime.event_typing import LABEL_WORDS, PROMPT

PAD = "<|endoftext|>"


def tiny_tokenizer(vocab_size: int = 512) -> ViSpeakTokenizer:
    words = [PAD, SEG_TOKEN, IM_END, *MARKERS, "[UNK]"]
    extra = [w for text in (*SYSTEM_PROMPTS.values(), PROMPT, *LABEL_WORDS.values()) for w in text.split()]
    for word in extra:
        if word not in words:
            words.append(word)
    i = 0
    while len(words) < vocab_size:
        words.append(f"w{i}." if i % 5 == 4 else f"w{i}")
        i += 1
    if len(words) > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} is too small for {len(words)} words")
    tok = Tokenizer(models.WordLevel({w: n for n, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return ViSpeakTokenizer(tok, PAD, source=None)  # type: ignore[arg-type]
