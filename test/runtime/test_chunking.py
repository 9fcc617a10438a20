"""Answers are chunked into sentences for speech as they are generated."""

from vispeak_ros.runtime.chunking import SentenceChunker


def test_sentences_are_cut_as_soon_as_they_end():
    chunker = SentenceChunker()
    out = []
    for delta in ["Watch", " out! Some", "one fell. Are", " you okay?"]:
        out += chunker.feed(delta)
    assert out == ["Watch out!", "Someone fell."]
    assert chunker.finish() == ["Are you okay?"]
    assert chunker.finish() == []


def test_long_text_without_punctuation_is_cut_on_a_word_boundary():
    chunker = SentenceChunker(max_chars=20)
    chunks = chunker.feed("one two three four five six seven eight") + chunker.finish()
    assert all(len(c) <= 20 for c in chunks)
    assert " ".join(chunks) == "one two three four five six seven eight"
