"""The assistant loop on the tiny random model (a real model, untrained): decisions, markers, pre-emption,
interruption, state machine, label scoring that leaves the session unchanged, pad alignment, import hygiene."""

from __future__ import annotations

import subprocess
import sys

import torch
from runtimekit import segments, tiny_assistant

from vispeak_ros.core.events import Behaviour, Trigger
from vispeak_ros.core.session_state import SessionState, Transition
from vispeak_ros.runtime.event_typing import EventTyper
from vispeak_ros.runtime.outputs import (
    FeedbackChunk,
    FinalAnswer,
    InformativeRecord,
    SpeechCancel,
    StateChange,
    TypedEvent,
)

NEVER = 3.0  # a sum of three probabilities never exceeds 3: no proactive answer


def run(assistant, segs):
    return [out for seg in segs for out in assistant.process(seg)]


def of(outputs, kind):
    return [o for o in outputs if isinstance(o, kind)]


def test_proactive_trigger_fires_at_the_first_segment_whose_running_sum_exceeds_the_threshold():
    assistant = tiny_assistant(seed=1, trigger_threshold=1.2)
    outputs = run(assistant, segments(6, seed=1, audio=False))
    records = of(outputs, InformativeRecord)
    probs = [r.probability for r in records]
    assert [r.running_sum for r in records[:3]] == [sum(probs[:1]), sum(probs[:2]), sum(probs[:3])]
    first = next(r for r in records if r.running_sum > 1.2)
    chunk = of(outputs, FeedbackChunk)[0] if of(outputs, FeedbackChunk) else of(outputs, FinalAnswer)[0]
    assert first.triggered and not any(r.triggered for r in records[: records.index(first)])
    assert chunk.answer_segment_index == first.segment_index
    assert chunk.trigger is Trigger.VISUAL and chunk.marker == "☟"
    assert chunk.answer_stamp_ns == segments(6, seed=1, audio=False)[first.segment_index].frame_stamp_ns
    assert chunk.informative == first.probability


def test_text_question_is_answered_with_the_marker_the_model_emits():
    assistant = tiny_assistant(seed=2, trigger_threshold=NEVER)
    segs = segments(4, seed=2, texts={2: "hello robot what is this"}, audio=False)
    outputs = run(assistant, segs[:3])
    starts = [c for c in of(outputs, StateChange) if c.transition is Transition.ANSWER_STARTED]
    assert len(starts) == 1 and starts[0].segment_index == 2
    # what the model emits at the text block's seg row, from a one-shot forward over the same rows (agent: pad)
    backend = assistant.backend
    tok = backend.tokenizer
    from vispeak_ros.model.prompts import SYSTEM_PROMPTS

    rows = [backend.model.embed_tokens(torch.tensor([*tok.encode(SYSTEM_PROMPTS["vispeak"]), backend.tokens.seg]))]
    rows += [backend.frame_block(s.frame) for s in segs[:3]]
    rows.append(backend.text_block(tok.encode("hello robot what is this")))
    user = torch.cat(rows)
    with torch.no_grad():
        logits, _ = backend.model(torch.full((1, user.shape[0]), backend.tokens.pad), user[None])
    emitted = int(logits[0, -1].argmax())
    assert emitted != backend.tokens.pad
    assistant.process(segs[3])
    answer = assistant.answer or None
    final = answer.ids if answer is not None else of(run(assistant, []), FinalAnswer)[0].token_ids
    assert final[0] == emitted
    expected = {backend.tokens.text_answer: Trigger.TEXT, backend.tokens.audio_answer: Trigger.AUDIO}
    assert answer.trigger is expected.get(emitted, Trigger.TEXT)
    assert answer.marker == tok.decode([emitted], skip_special_tokens=False)
    assert answer.stamp_ns == segs[2].texts[0].stamp_ns


def test_a_newer_trigger_preempts_the_running_answer_at_the_next_frame():
    assistant = tiny_assistant(seed=1, trigger_threshold=0.3, max_answer_tokens=100)
    outputs = run(assistant, segments(2, seed=1))
    cancels = of(outputs, SpeechCancel)
    assert [(c.up_to_answer_id, c.reason, c.segment_index) for c in cancels] == [(0, "preempted", 1)]
    cut = of(outputs, FinalAnswer)[0]
    assert cut.reason == "preempted" and cut.answer_id == 0 and cut.answer_segment_index == 0
    transitions = [c.transition for c in of(outputs, StateChange)]
    assert transitions == [Transition.ANSWER_STARTED, Transition.INTERRUPT, Transition.ANSWER_STARTED]
    assert assistant.answer.answer_id == 1 and assistant.answer.segment_index == 1
    assert [r.speaking for r in of(outputs, InformativeRecord)] == [False, True]


def test_interrupt_cuts_the_running_answer_at_once_and_the_session_resumes():
    assistant = tiny_assistant(seed=2, trigger_threshold=NEVER)
    segs = segments(5, seed=2, texts={2: "hello robot"}, audio=False)
    run(assistant, segs[:3])
    assert assistant.state is SessionState.RESPONDING and assistant.backend.speaking
    outputs = assistant.interrupt()
    assert of(outputs, SpeechCancel)[0].up_to_answer_id == 0
    assert of(outputs, FinalAnswer)[0].reason == "interrupted"
    assert assistant.state is SessionState.INTERRUPTED and not assistant.backend.speaking
    after = assistant.process(segs[3])
    assert assistant.state is SessionState.AWAKE
    assert not of(after, FeedbackChunk), "nothing of the cut answer is said after the interruption"


def test_state_follows_the_typed_events_termination_returns_to_idle():
    assistant = tiny_assistant(seed=2, trigger_threshold=NEVER, max_answer_tokens=4)
    backend = assistant.backend
    assistant.typer = EventTyper(backend, {Behaviour.TERMINATION}, words={Behaviour.TERMINATION: "goodbye"})
    outputs = run(assistant, segments(5, seed=2, texts={1: "bye"}, audio=False))
    events = of(outputs, TypedEvent)
    assert events and events[0].event.behaviour is Behaviour.TERMINATION and events[0].event.confidence == 1.0
    transitions = [c.transition for c in of(outputs, StateChange)]
    assert transitions[:4] == [
        Transition.ANSWER_STARTED,
        Transition.ANSWER_FINISHED,
        Transition.TERMINATE,
        Transition.SETTLE,
    ]
    assert assistant.state is SessionState.IDLE
    final = of(outputs, FinalAnswer)[0]
    assert final.reason == "length" and len(final.token_ids) == 4
    last = [c for c in of(outputs, FeedbackChunk) if c.answer_id == 0][-1]
    assert not last.partial


def test_wake_up_event_wakes_and_interruption_event_silences_earlier_answers():
    assistant = tiny_assistant(seed=2, trigger_threshold=NEVER, max_answer_tokens=3)
    backend = assistant.backend
    assistant.typer = EventTyper(backend, {Behaviour.WAKE_UP}, words={Behaviour.WAKE_UP: "greeting"})
    outputs = run(assistant, segments(3, seed=2, texts={1: "hello"}, audio=False))
    assert of(outputs, TypedEvent)[0].event.behaviour is Behaviour.WAKE_UP
    assert [c.after for c in of(outputs, StateChange)] == [SessionState.RESPONDING, SessionState.AWAKE]
    assert assistant.state is SessionState.AWAKE
    assistant.typer = EventTyper(backend, {Behaviour.INTERRUPTION}, words={Behaviour.INTERRUPTION: "stop"})
    outputs = run(assistant, segments(6, seed=3, texts={4: "stop"}, audio=False)[3:])
    cancel = of(outputs, SpeechCancel)
    assert cancel and cancel[0].reason == "interruption_event" and cancel[0].up_to_answer_id == 0


def test_an_answer_given_while_idle_returns_to_idle_unless_it_woke_the_assistant():
    assistant = tiny_assistant(seed=2, trigger_threshold=NEVER, max_answer_tokens=3)
    assistant.typer = EventTyper(assistant.backend, {Behaviour.ANOMALY}, words={Behaviour.ANOMALY: "danger"})
    outputs = run(assistant, segments(3, seed=2, texts={1: "help"}, audio=False))
    assert of(outputs, TypedEvent)[0].event.behaviour is Behaviour.ANOMALY
    assert [c.after for c in of(outputs, StateChange)] == [
        SessionState.RESPONDING,
        SessionState.AWAKE,
        SessionState.IDLE,
    ]


def _cache(assistant):
    return [(layer.keys.clone(), layer.values.clone()) for layer in assistant.backend.session.cache.layers]


def test_label_scoring_leaves_the_session_unchanged():
    a, b = tiny_assistant(seed=4, trigger_threshold=NEVER), tiny_assistant(seed=4, trigger_threshold=NEVER)
    segs = segments(4, seed=4, texts={1: "hello"})
    for seg in segs[:3]:
        a.process(seg)
        b.process(seg)
        scores = a.typer.type_answer().scores
        assert len(scores) == 8 and all(s < 0 for _, s in scores)
    for (ka, va), (kb, vb) in zip(_cache(a), _cache(b), strict=True):
        assert torch.equal(ka, kb) and torch.equal(va, vb)
    sa, sb = a.backend.session, b.backend.session

    def state(s):
        return s.max_position, s.rows_seen, s.answer, s.next_agent, list(s.trigger._recent)

    assert state(sa) == state(sb)
    sa.record_logits = sb.record_logits = True
    rows = a.backend.frame_block(segs[3].frame)
    ra, rb = sa.feed(rows, kind="frame"), sb.feed(rows, kind="frame")
    assert torch.equal(ra.logits, rb.logits) and ra.emitted == rb.emitted


def test_label_scores_are_the_models_log_probabilities():
    assistant = tiny_assistant(seed=5, trigger_threshold=NEVER)
    assistant.process(segments(1, seed=5)[0])
    backend = assistant.backend
    prefix, label = [backend.tokens.im_end, 10, 11], [12, 13]
    (score,) = backend.score(prefix, [label])
    pad_row = backend.model.embed_tokens(torch.tensor([backend.tokens.pad]))[0]
    logits = backend.session.probe(pad_row.expand(4, -1), [*prefix, label[0]])
    logp = torch.log_softmax(logits, -1)
    assert abs(score - float((logp[2, 12] + logp[3, 13]) / 2)) < 1e-5


def test_pad_alignment_speaks_the_whole_answer_in_the_segment_that_started_it():
    assistant = tiny_assistant(seed=2, trigger_threshold=NEVER, alignment="pad", max_answer_tokens=20)
    outputs = run(assistant, segments(3, seed=2, texts={1: "hello robot"}, audio=False))
    final = of(outputs, FinalAnswer)[0]
    assert final.answer_segment_index == 1 and final.segment_index == 1
    assert final.reason in ("im_end", "length")


def test_replay_is_deterministic():
    def outputs():
        assistant = tiny_assistant(seed=1, trigger_threshold=0.9, max_answer_tokens=12)
        return run(assistant, segments(6, seed=7, texts={3: "what is this"}))

    first = outputs()
    assert first == outputs()
    assert of(first, FinalAnswer) and of(first, TypedEvent)


def test_runtime_imports_neither_ros_nor_torch():
    code = (
        "import sys, vispeak_ros.runtime.assistant, vispeak_ros.runtime.worker, vispeak_ros.runtime.backends.base;"
        "bad = [m for m in ('torch', 'rclpy', 'transformers') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_latched_trigger_answers_an_event_once_and_does_not_preempt_its_own_answer():
    assistant = tiny_assistant(seed=1, trigger_threshold=0.3, trigger_release=0.1, max_answer_tokens=100)
    outputs = run(assistant, segments(4, seed=1, audio=False))
    assert not of(outputs, SpeechCancel)
    records = of(outputs, InformativeRecord)
    assert [r.triggered for r in records] == [True, False, False, False]
    assert all(r.running_sum > 0.3 for r in records), "the head stayed high: only the latch held the trigger"


def test_audio_seg_rows_decide_only_with_audio_questions_on():
    def starts(**overrides):
        assistant = tiny_assistant(seed=2, trigger_threshold=NEVER, max_answer_tokens=4, **overrides)
        outputs = run(assistant, segments(3, seed=2))
        return [a for a in of(outputs, FinalAnswer)]

    assert starts() == []
    answers = starts(audio_questions=True)
    assert answers and answers[0].answer_segment_index == 0
    assert answers[0].answer_stamp_ns == segments(1, seed=2)[0].end_ns
    assert answers[0].trigger in (Trigger.AUDIO, Trigger.TEXT, Trigger.VISUAL)  # read from the emitted marker
