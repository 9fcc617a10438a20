"""Tokenizer set-up: the Qwen2.5 tokenizer from the checkpoint folder, plus ViSpeak's special strings.

ViSpeak adds no new tokens; it reuses existing ones, and each must be one token:
- seg token `>Note` ends every segment of the user stream;
- response markers `☜` (answer to text), `☞` (answer to audio), `☟` (proactive visual answer);
- `<|im_end|>` ends every answer; the tokenizer's pad token (`<|endoftext|>` for Qwen2.5) is silence.
Only `tokenizer.json` (+ `tokenizer_config.json` for the pad token) is read, with the `tokenizers` library: no
remote code, no network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from vispeak_ros.model.config import read_json
from vispeak_ros.model.errors import CheckpointError

SEG_TOKEN = ">Note"
TEXT_ANSWER_MARKER = "☜"
AUDIO_ANSWER_MARKER = "☞"
PROACTIVE_MARKER = "☟"
MARKERS = (TEXT_ANSWER_MARKER, AUDIO_ANSWER_MARKER, PROACTIVE_MARKER)
IM_END = "<|im_end|>"


@dataclass(frozen=True)
class SpecialTokens:
    """The ids the streaming logic needs. `vocab_limit` restricts argmax to real tokens (None: all logits)."""

    seg: int
    pad: int
    im_end: int
    proactive: int
    text_answer: int | None = None
    audio_answer: int | None = None
    vocab_limit: int | None = None

    @property
    def markers(self) -> tuple[int, ...]:
        return tuple(t for t in (self.text_answer, self.audio_answer, self.proactive) if t is not None)


class ViSpeakTokenizer:
    """A thin wrapper over `tokenizers.Tokenizer` that knows ViSpeak's special strings."""

    def __init__(self, tokenizer: Tokenizer, pad_token: str | None, source: Path) -> None:
        self.tokenizer = tokenizer
        self.pad_token = pad_token
        self.source = source

    def encode(self, text: str) -> list[int]:
        """Plain text -> ids, no special tokens added (the official template adds none)."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    def single_id(self, text: str) -> int:
        """The id of a string that must be exactly one token."""
        ids = self.encode(text)
        if len(ids) != 1:
            raise CheckpointError(f"{self.source}: {text!r} is {len(ids)} tokens, expected exactly one")
        return ids[0]

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def special_tokens(self) -> SpecialTokens:
        if self.pad_token is None:
            raise CheckpointError(f"{self.source}: no pad_token in tokenizer_config.json")
        pad = self.tokenizer.token_to_id(self.pad_token)
        if pad is None:
            raise CheckpointError(f"{self.source}: pad token {self.pad_token!r} is not in the vocabulary")
        im_end = self.tokenizer.token_to_id(IM_END)
        if im_end is None:
            raise CheckpointError(f"{self.source}: {IM_END} is not in the vocabulary")
        return SpecialTokens(
            seg=self.single_id(SEG_TOKEN),
            pad=pad,
            im_end=im_end,
            proactive=self.single_id(PROACTIVE_MARKER),
            text_answer=self.single_id(TEXT_ANSWER_MARKER),
            audio_answer=self.single_id(AUDIO_ANSWER_MARKER),
            vocab_limit=len(self),
        )

    def decode_answer(self, ids: list[int]) -> str:
        """Answer text: stop at <|im_end|>, drop a leading marker (the official decoder strips it)."""
        specials = self.special_tokens()
        if specials.im_end in ids:
            ids = ids[: ids.index(specials.im_end)]
        if ids and ids[0] in specials.markers:
            ids = ids[1:]
        return self.decode(ids)


def load_tokenizer(folder: Path) -> ViSpeakTokenizer | None:
    """The tokenizer in `folder`, or None when it has no tokenizer.json."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        return None
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises its own exception type
        raise CheckpointError(f"{path}: cannot read tokenizer ({exc})") from None
    pad = None
    cfg_path = folder / "tokenizer_config.json"
    if cfg_path.is_file():
        value = read_json(cfg_path).get("pad_token")
        pad = value.get("content") if isinstance(value, dict) else value
    return ViSpeakTokenizer(tok, pad, folder)
