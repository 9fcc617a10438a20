"""The proactive trigger sums the last three probabilities; answers are chunked into sentences for speech."""

from vispeak_ros.runtime.decisions import SentenceChunker, TriggerRule


def test_trigger_fires_on_the_sum_of_the_last_three_not_the_mean():
    rule = TriggerRule(threshold=0.35)
    decisions = [rule.push(p) for p in [0.0, 0.1, 0.1, 0.1, 0.2, 0.0, 0.0, 0.0]]
    assert [round(d.running_sum, 6) for d in decisions] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.3, 0.2, 0.0]
    assert [d.fired for d in decisions] == [False, False, False, False, True, False, False, False]


def test_trigger_rearms_after_an_answer():
    rule = TriggerRule(threshold=0.35)
    assert rule.push(0.9).fired
    rule.rearm()
    assert not rule.push(0.2).fired


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
