"""Label phrases: the first spellable alternative is used, so typing works with word-level vocabularies too."""

from __future__ import annotations

from types import SimpleNamespace

from tokenizers import Tokenizer, models, pre_tokenizers

from vispeak_ros.core.events import Behaviour
from vispeak_ros.model.tokenizer import IM_END, MARKERS, SEG_TOKEN, ViSpeakTokenizer
from vispeak_ros.runtime.event_typing import EventTyper, spellable
from vispeak_ros.runtime.tiny import tiny_tokenizer


def word_tokenizer(words: list[str]) -> ViSpeakTokenizer:
    vocab = {w: i for i, w in enumerate(["<unk>", "<|endoftext|>", SEG_TOKEN, IM_END, *MARKERS, *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return ViSpeakTokenizer(tok, "<|endoftext|>", source=None)  # type: ignore[arg-type]


def test_unknown_words_are_not_spellable():
    tok = word_tokenizer(["Hello!", "Goodbye,"])
    assert spellable(tok, "Hello!") == [tok.encode("Hello!")[0]]
    assert spellable(tok, "greeting") is None


def test_typer_falls_back_to_spellable_phrases_and_drops_the_unspellable_prompt():
    tok = word_tokenizer(["Hello!", "Goodbye,", "Okay,"])
    backend = SimpleNamespace(tokenizer=tok, tokens=tok.special_tokens())  # the constructor reads only these
    typer = EventTyper(backend, set(Behaviour))
    assert typer.prefix == [tok.special_tokens().im_end] and typer.uses_marker
    by_behaviour = {b: tok.decode(list(ids)) for b, ids in typer.labels}
    expected = {Behaviour.WAKE_UP: "Hello!", Behaviour.INTERRUPTION: "Okay,", Behaviour.TERMINATION: "Goodbye,"}
    assert by_behaviour == expected


def test_full_vocabularies_use_the_prompt_and_the_plain_label_words():
    tok = tiny_tokenizer()
    backend = SimpleNamespace(tokenizer=tok, tokens=tok.special_tokens())
    typer = EventTyper(backend, set(Behaviour))
    assert tok.decode(typer.prefix[1:]) == "This is about:" and not typer.uses_marker
    assert len(typer.labels) == 8
