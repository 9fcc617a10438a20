"""Our model against the official ViSpeak code's outputs on its tiny checkpoint (float32, tolerance 1e-4).

Token ids come from the reference's JSON. Images are `images_int8 / 32`, already preprocessed; audio is the given
fbank. See ../shared/reference/official_tiny/README.md for how every tensor was computed.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from modelkit import Reference, close

from vispeak_ros.model import StreamingSession, ViSpeakForCausalLM


@pytest.fixture(scope="module")
def images(reference: Reference) -> torch.Tensor:
    return reference.tensors["images_int8"].float() / 32.0


def test_vision_tower_last_hidden_state_keeps_cls_and_has_no_post_norm(official_model, reference, images):
    with torch.no_grad():
        hidden = official_model.vision_tower(images[:1])
    close(hidden[0], reference.tensors["vision_tower_last_hidden_frame0"])


def test_vision_features_drop_cls_scale_and_pixel_shuffle(official_model, reference, images):
    with torch.no_grad():
        close(official_model.vision_features(images), reference.tensors["vision_tower_features"])


def test_encode_images_pools_to_64_tokens_then_projects(official_model, reference, images):
    with torch.no_grad():
        features = official_model.encode_images(images)
    assert features.shape[1] == 64 == official_model.config.tokens_per_frame
    close(features, reference.tensors["image_features_projected"])


def test_encode_audio_gives_12_tokens_per_chunk(official_model, reference):
    t = reference.tensors
    with torch.no_grad():
        features, mask = official_model.encode_audio_with_mask(t["audio_fbank"], t["audio_lengths"])
    close(features, t["audio_features"])
    assert torch.equal(mask.long(), t["audio_attention_mask"])
    assert torch.equal(features, official_model.encode_audio(t["audio_fbank"], t["audio_lengths"]))


def test_user_stream_placeholders_are_filled_in_order(official_user_embeds, reference):
    padded = reference.tensors["user_embeds_inference_padded16"]
    length = reference.meta["sequence_length"]
    close(official_user_embeds, padded[:length])
    close(padded[length:], reference.tensors["pad_embedding"].expand(reference.meta["padding_size"], -1))


@pytest.mark.parametrize("prefix", ["", "agentans_"])
def test_fusion_agent_first_is_the_trained_path(official_model, official_user_embeds, reference, prefix):
    t = reference.tensors
    agent_ids = t["agentans_agent_input_ids"] if prefix else t["agent_input_ids"]
    with torch.no_grad():
        agent = official_model.embed_tokens(agent_ids)
        close(official_model.fuse(agent, official_user_embeds), t[f"{prefix}fused_embeds_train_path"])
        close(official_model.fusion.gate_logit(agent, official_user_embeds), t[f"{prefix}adaptive_weight_train_path"])


@pytest.mark.parametrize("prefix", ["", "agentans_"])
def test_fusion_user_first_reproduces_the_official_streaming_prefill(
    official_model, official_user_embeds, reference, prefix
):
    t = reference.tensors
    agent_ids = t["agentans_agent_input_ids"] if prefix else t["agent_input_ids"]
    with torch.no_grad():
        agent = official_model.embed_tokens(agent_ids)
        fused = official_model.fuse(agent, official_user_embeds, order="user_first")
        weight = official_model.fusion.gate_logit(agent, official_user_embeds, order="user_first")
    close(fused, t[f"{prefix}fused_embeds_stream_prefix_order"])
    close(weight, t[f"{prefix}adaptive_weight_stream_prefix_order"])


def test_fusion_on_random_streams(official_model, reference):
    t = reference.tensors
    agent, user = t["fusion_rand_agent"], t["fusion_rand_user"]
    with torch.no_grad():
        close(official_model.fusion.gate_logit(agent, user), t["fusion_rand_weight_logit"])
        close(official_model.fuse(agent, user), t["fusion_rand_out_agent_first"])


@pytest.fixture(scope="module")
def train_path(official_model: ViSpeakForCausalLM, official_user_embeds, reference: Reference):
    """Logits and informative logits of the training-path forward, all-pad and answer-filled agent streams."""
    t = reference.tensors
    with torch.no_grad():
        plain = official_model(t["agent_input_ids"][None], official_user_embeds[None])
        answered = official_model(t["agentans_agent_input_ids"][None], official_user_embeds[None])
    return {"": (plain[0][0], plain[1][0]), "agentans_": (answered[0][0], answered[1][0])}


@pytest.mark.parametrize("prefix", ["", "agentans_"])
def test_forward_informative_logits_at_every_position(train_path, reference, prefix):
    close(train_path[prefix][1], reference.tensors[f"{prefix}informative_logits"])


@pytest.mark.parametrize("prefix", ["", "agentans_"])
def test_forward_logit_summaries_at_every_position(train_path, reference, prefix):
    logits, t = train_path[prefix][0], reference.tensors
    assert torch.equal(logits.argmax(-1), t[f"{prefix}logits_argmax"])
    close(logits.max(-1).values, t[f"{prefix}logits_max"])
    close(logits.logsumexp(-1), t[f"{prefix}logits_logsumexp"])


def test_forward_logits_at_recorded_positions(train_path, reference):
    logits, t = train_path[""][0], reference.tensors
    close(logits[t["logits_full_positions"]], t["logits_full"])
    close(logits[:, t["vocab_subset_ids"]], t["logits_vocab_subset"])
    values, ids = logits.topk(5, dim=-1)
    assert torch.equal(ids, t["top5_ids"])
    close(values, t["top5_values"])
    assert t["logits_full_positions"].tolist() == reference.meta["seg_positions"]


def test_forward_logits_in_the_answer_window(train_path, reference):
    logits, t = train_path["agentans_"][0], reference.tensors
    window = reference.meta["agentans_logits_vocab_subset_answer_window_positions"]
    close(logits[window][:, t["vocab_subset_ids"]], t["agentans_logits_vocab_subset_answer_window"])


def test_last_hidden_state_is_after_the_final_norm(official_model, official_user_embeds, reference):
    t = reference.tensors
    with torch.no_grad():
        fused = official_model.fuse(official_model.embed_tokens(t["agent_input_ids"]), official_user_embeds)
        hidden = official_model.llm.model(inputs_embeds=fused[None]).last_hidden_state[0]
    close(hidden, t["last_hidden_state_train_path"])


def run_official_stream(model, user_embeds, reference: Reference, tag: str):
    """Drive our StreamingSession the way the official streaming_generate runs: prefill up to
    start_inference_seg[1] (user-first order, parity switch), then one segment at a time, then the padding rows."""
    run = reference.meta["streaming"][tag]
    t = reference.tensors
    start = run["start_inference_seg"][1]
    agent = t["agentans_agent_input_ids"] if run["interrupt"] else t["agent_input_ids"]
    bounds = [0] + [p + 1 for p in reference.meta["seg_positions"]]
    segments = [user_embeds[a:b] for a, b in itertools.pairwise(bounds)]
    first_fed = bounds.index(start)
    session = StreamingSession(
        model, reference.tokens(), proactive=run["proactive"], reactive=not run["proactive"], record_logits=True
    )
    with torch.no_grad():
        results = [
            session.start(
                segments[:first_fed],
                agent[:start].tolist(),
                prefill_order="user_first",
                forced_first=int(agent[start]) if run["interrupt"] else None,
            )
        ]
        results += [session.feed(segment) for segment in segments[first_fed:]]
        results.append(session.finish(reference.meta["padding_size"]))
    step0 = start - 1  # official step i is user position start - 1 + i
    emitted = [tok for r in results for tok in r.emitted][step0:]
    informative = torch.cat([r.informative_logits for r in results])[step0:]
    logits = torch.cat([r.logits for r in results])[step0:]
    # results[0] decides at segment first_fed - 1, results[i] at segment first_fed - 1 + i
    trigger_segment = first_fed - 1 + next(i for i, r in enumerate(results) if r.started)
    return emitted, informative, logits, trigger_segment


@pytest.mark.parametrize(
    "tag", ["stream_proactive", "stream_nonproactive", "stream_interrupt_proactive", "stream_interrupt_nonproactive"]
)
def test_streaming_session_reproduces_official_streaming_generate(official_model, official_user_embeds, reference, tag):
    run = reference.meta["streaming"][tag]
    t = reference.tensors
    emitted, informative, logits, trigger_segment = run_official_stream(
        official_model, official_user_embeds, reference, tag
    )
    assert len(emitted) == run["num_steps"]
    assert emitted == t[f"{tag}_generated_ids"].tolist()
    first = next(i for i, tok in enumerate(emitted) if tok != reference.tokens().pad)
    assert first == run["first_non_pad_step"]
    if run["proactive"]:
        assert emitted[first] == reference.meta["token_ids"]["proactive_forced_first_token"]
    close(informative, t[f"{tag}_step_informative_logits"])
    assert torch.equal(logits.argmax(-1), t[f"{tag}_step_logits_argmax"])
    close(logits.max(-1).values, t[f"{tag}_step_logits_max"])
    close(logits.logsumexp(-1), t[f"{tag}_step_logits_logsumexp"])
    if f"{tag}_step_logits_vocab_subset" in t:
        close(logits[:, t["vocab_subset_ids"]], t[f"{tag}_step_logits_vocab_subset"])
    # Response time: the timestamp of the segment whose seg token started the answer (timestamps skip the system).
    assert reference.meta["timestamps"][trigger_segment - 1] == run["output_timestamp"]
