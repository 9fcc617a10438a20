"""StreamingSession on a tiny random model: incremental = one-shot, bounded cache, re-rotation, trigger rule."""

from __future__ import annotations

import math

import pytest
import torch
from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

from vispeak_ros.model import SpecialTokens, StreamingSession
from vispeak_ros.model.cache import SinkWindowCache, rerotate_keys
from vispeak_ros.model.tiny import tiny_model

PAD, SEG, IM_END, PROACTIVE = 0, 1, 2, 3
TOKENS = SpecialTokens(seg=SEG, pad=PAD, im_end=IM_END, proactive=PROACTIVE)
SYSTEM_ROWS, SEGMENT_ROWS = 6, 5


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=1, encoders=False)


def user_stream(model, segments: int, seed: int = 0) -> list[torch.Tensor]:
    """The system segment and `segments` more, as embedded rows (random ids; every segment ends with SEG)."""
    gen = torch.Generator().manual_seed(seed)
    vocab = model.config.llm.vocab_size
    out = []
    for rows in [SYSTEM_ROWS] + [SEGMENT_ROWS] * segments:
        ids = torch.randint(4, vocab, (rows,), generator=gen)
        ids[-1] = SEG
        out.append(model.embed_tokens(ids))
    return out


def run_session(session: StreamingSession, segments: list[torch.Tensor], start_with: int = 2):
    with torch.no_grad():
        results = [session.start(segments[:start_with])]
        results += [session.feed(s) for s in segments[start_with:]]
    return results


def one_shot(model, segments: list[torch.Tensor], emitted: list[int]):
    """The training-path forward over the same rows, with the agent stream the session produced: each row's agent
    token is the token emitted at the row before it."""
    user = torch.cat(segments)
    agent = torch.tensor([PAD, *emitted[:-1]])
    with torch.no_grad():
        logits, informative = model(agent[None], user[None])
    return logits[0], informative[0]


def flat(results, field: str):
    values = [getattr(r, field) for r in results]
    return [v for vs in values for v in vs] if field == "emitted" else torch.cat(values)


def test_silent_session_equals_one_shot_forward(model):
    segments = user_stream(model, 10)
    results = run_session(StreamingSession(model, TOKENS, proactive=False, record_logits=True), segments)
    emitted = flat(results, "emitted")
    assert set(emitted) == {PAD}
    logits, informative = one_shot(model, segments, emitted)
    torch.testing.assert_close(flat(results, "informative_logits"), informative, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(flat(results, "logits"), logits, atol=1e-5, rtol=1e-5)


def test_speaking_session_pairs_each_token_with_the_next_user_row(model):
    segments = user_stream(model, 6)
    session = StreamingSession(model, TOKENS, proactive=False, reactive=True, record_logits=True)
    results = run_session(session, segments)
    emitted = flat(results, "emitted")
    assert results[0].started, "a random model's argmax at the first seg row is not pad"
    speaking_rows = [p for p, tok in enumerate(emitted) if tok != PAD]
    assert speaking_rows == list(range(SYSTEM_ROWS + SEGMENT_ROWS - 1, len(emitted)))
    logits, informative = one_shot(model, segments, emitted)
    assert logits[speaking_rows].argmax(-1).tolist() == [emitted[p] for p in speaking_rows]
    torch.testing.assert_close(flat(results, "logits"), logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(flat(results, "informative_logits"), informative, atol=1e-5, rtol=1e-5)


def test_answer_ends_at_im_end_which_is_fed_back_once_then_pad(model):
    segments = user_stream(model, 6)
    first = run_session(StreamingSession(model, TOKENS, proactive=False, reactive=True), segments)
    answer = [t for t in flat(first, "emitted") if t != PAD]
    k = next(i for i in range(1, len(answer)) if answer[i] not in answer[:i])
    tokens = SpecialTokens(seg=SEG, pad=PAD, im_end=answer[k], proactive=PROACTIVE)
    session = StreamingSession(model, tokens, proactive=False, reactive=True, record_logits=True)
    results = run_session(session, segments)
    emitted = flat(results, "emitted")
    assert any(r.finished for r in results)
    assert emitted[SYSTEM_ROWS + SEGMENT_ROWS - 1 :][: k + 1] == answer[: k + 1]
    logits, _ = one_shot(model, segments, emitted)
    torch.testing.assert_close(flat(results, "logits"), logits, atol=1e-5, rtol=1e-5)
    end_row = emitted.index(answer[k])
    assert logits[end_row].argmax(-1) == answer[k]


def test_bounded_session_with_a_longer_window_equals_the_full_one_exactly(model):
    segments = user_stream(model, 12)
    full = run_session(StreamingSession(model, TOKENS, proactive=False, reactive=True, record_logits=True), segments)
    bounded_session = StreamingSession(
        model, TOKENS, proactive=False, reactive=True, record_logits=True, window_tokens=10_000, max_segment_tokens=8
    )
    bounded = run_session(bounded_session, segments)
    assert flat(bounded, "emitted") == flat(full, "emitted")
    assert torch.equal(flat(bounded, "logits"), flat(full, "logits"))
    assert torch.equal(flat(bounded, "informative_logits"), flat(full, "informative_logits"))


@pytest.mark.slow
def test_position_ids_stay_within_the_bound_over_10000_segments():
    small = tiny_model(seed=2, encoders=False, vocab_size=16, hidden_size=16, num_layers=1)
    window, max_segment = 12, 4
    session = StreamingSession(small, TOKENS, proactive=False, window_tokens=window, max_segment_tokens=max_segment)
    rows = small.embed_tokens(torch.tensor([5, 6, SEG]))
    with torch.no_grad():
        session.start([small.embed_tokens(torch.tensor([4, 4, SEG]))])
        bound = session.position_bound
        assert bound == 3 + window + max_segment
        for _ in range(10_000):
            session.feed(rows)
            assert session.max_position < bound
            assert session.cache.get_seq_length() <= bound
    assert session.rows_seen == 3 + 3 * 10_000


def test_rerotation_moves_keys_to_their_new_positions(model):
    rotary = model.llm.model.rotary_emb
    heads, dim = 2, model.config.llm.hidden_size // model.config.llm.num_attention_heads
    keys = torch.randn(1, heads, 7, dim, generator=torch.Generator().manual_seed(0))
    far = torch.arange(5000, 5007)[None]
    near = far - 4321
    at_far = apply_rotary_pos_emb(keys, keys, *rotary(keys, far))[1]
    at_near = apply_rotary_pos_emb(keys, keys, *rotary(keys, near))[1]
    torch.testing.assert_close(rerotate_keys(at_far, -4321, rotary.inv_freq), at_near, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(rerotate_keys(at_near, 4321, rotary.inv_freq), at_far, atol=2e-5, rtol=1e-5)


def test_eviction_keeps_first_layer_keys_equal_to_a_fresh_prefill(model):
    """Layer-0 keys depend only on each row's fused input: after dropping segments, the retained keys must equal
    those of a fresh prefill of sink + retained rows at the compacted positions."""
    segments = user_stream(model, 9)
    session = StreamingSession(model, TOKENS, proactive=False, window_tokens=2 * SEGMENT_ROWS, max_segment_tokens=8)
    run_session(session, segments, start_with=1)
    kept = list(session.segments)
    assert sum(kept) < 9 * SEGMENT_ROWS, "segments were dropped"
    retained = torch.cat([segments[0], *segments[len(segments) - len(kept) :]])
    fresh = SinkWindowCache(model.config.llm, model.llm.model.rotary_emb.inv_freq)
    with torch.no_grad():
        fused = model.fuse(model.embed_tokens(torch.full((retained.shape[0],), PAD)), retained)
        model.llm.model(inputs_embeds=fused[None], cache=fresh, use_cache=True)
    torch.testing.assert_close(session.cache.layers[0].keys, fresh.layers[0].keys, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(session.cache.layers[0].values, fresh.layers[0].values, atol=1e-6, rtol=1e-6)


def constant_informative(model, probability: float):
    """A copy of the head whose logit is log(p / (1 - p)) at every row."""
    head = model.informative_head
    saved = {k: v.clone() for k, v in head.state_dict().items()}
    logit = math.log(probability / (1 - probability))
    with torch.no_grad():
        head[0].weight.zero_()
        head[0].bias.zero_()
        head[0].bias[0] = abs(logit)
        head[2].weight.zero_()
        head[2].weight[0, 0] = math.copysign(1.0, logit)
    return saved


@pytest.mark.parametrize(("probability", "trigger_feed"), [(0.15, 3), (0.36, 1), (0.1, None)])
def test_proactive_trigger_sums_the_last_three_probabilities(probability, trigger_feed):
    """0.15 x 3 = 0.45 > 0.35 triggers on the third push (a mean never would); 0.1 x 3 = 0.3 never does (the queue
    holds three); the first decision after start() pushes the official initial logit -100 (about 0)."""
    model = tiny_model(seed=1, encoders=False)
    constant_informative(model, probability)
    segments = user_stream(model, 8)
    results = run_session(StreamingSession(model, TOKENS, proactive=True), segments, start_with=1)
    assert results[0].informative_prob == pytest.approx(0.0, abs=1e-40)
    started = [i for i, r in enumerate(results) if r.started]
    if trigger_feed is None:
        assert started == []
        assert all(r.informative_prob == pytest.approx(probability) for r in results[1:])
    else:
        assert started[0] == trigger_feed
        assert results[trigger_feed].emitted[-1] == PROACTIVE


def test_feed_before_start_and_oversized_segments_are_refused(model):
    session = StreamingSession(model, TOKENS, max_segment_tokens=4)
    rows = user_stream(model, 1)
    with pytest.raises(RuntimeError, match="start"):
        session.feed(rows[1][:3])
    session.start(rows[:1])
    with pytest.raises(ValueError, match="segment"):
        session.feed(rows[1])


def test_finish_runs_an_answer_on_over_pad_rows_and_stops_at_im_end(model):
    segments = user_stream(model, 1)
    probe = StreamingSession(model, TOKENS, proactive=False, reactive=True)
    run_session(probe, segments)
    with torch.no_grad():
        probe.finish(30)
    answer = list(probe.answer)  # the first token came at start(), the rest over the pad rows
    k = next(i for i in range(1, len(answer)) if answer[i] not in answer[:i])
    tokens = SpecialTokens(seg=SEG, pad=PAD, im_end=answer[k], proactive=PROACTIVE)
    session = StreamingSession(model, tokens, proactive=False, reactive=True)
    run_session(session, segments)
    fed = session.cache.get_seq_length()
    with torch.no_grad():
        tail = session.finish(30)
    assert tail.finished and not tail.speaking
    assert session.answer == answer[: k + 1]
    assert session.cache.get_seq_length() - fed == len(tail.emitted) == k  # no pad row is fed after im_end
