"""The harness's loop (`harness.drive`) against runs of the official `streaming_generate` on its tiny checkpoint.

The official code ran the bench's driving on a tiny model (../shared/reference/official_tiny/README.md): proactive
from the first segment (Anomaly Warning, Humor, Wake-Up), non-proactive (Visual Reference's rule) and the Visual
Interruption call (answer pre-filled after the question, decoding from the next segment). With the official prefill
order (`user_first`, a parity switch) our loop must emit the same ids step by step and report the same time.
"""

import itertools
import json
from pathlib import Path

import pytest
import torch

from vispeak_ros.evaluation.harness import Block, Plan, drive
from vispeak_ros.model.tokenizer import SpecialTokens

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "official_tiny"


@pytest.fixture(scope="module")
def reference():
    if not (REFERENCE / "reference_io.json").is_file():
        pytest.skip(f"official tiny reference not found at {REFERENCE}")
    from safetensors.torch import load_file

    from vispeak_ros.model import load_checkpoint

    meta = json.loads((REFERENCE / "reference_io.json").read_text())
    tensors = load_file(str(REFERENCE / "reference_io.safetensors"))
    model = load_checkpoint(REFERENCE / "tiny_model")
    with torch.no_grad():
        images = model.encode_images(tensors["images_int8"].float() / 32.0)
        audio = model.encode_audio(tensors["audio_fbank"], tensors["audio_lengths"])
        user = model.embed_user_stream(tensors["user_input_ids"], images, audio)
    ids = meta["token_ids"]
    tokens = SpecialTokens(
        seg=ids["seg_token_chosen"],
        pad=ids["pad_chosen"],
        im_end=ids["im_end_stop"],
        proactive=ids["proactive_forced_first_token"],
    )
    return meta, tensors, model, user, tokens


@pytest.mark.parametrize(
    "tag",
    [
        "stream_interrupt_proactive",
        "stream_proactive",
        pytest.param("stream_nonproactive", marks=pytest.mark.slow),  # 230 steps over a 152k vocabulary: ~8 s
    ],
)
def test_drive_emits_the_official_ids_and_time(reference, tag):
    from vispeak_ros.model import StreamingSession

    meta, tensors, model, user, tokens = reference
    run = meta["streaming"][tag]
    bounds = [0] + [p + 1 for p in meta["seg_positions"]]
    segments = [user[a:b] for a, b in itertools.pairwise(bounds)]  # system prompt, then one per timestamp
    agent = tensors["agentans_agent_input_ids" if run["interrupt"] else "agent_input_ids"].tolist()
    plan = Plan(
        system_ids=[],
        blocks=[Block("frame", t, frame=k) for k, t in enumerate(meta["timestamps"])],
        ends=bounds[2:],  # the official num_token
        agent=agent,
        start=run["start_inference_seg"][0],
    )
    assert plan.ends[plan.start] == run["start_inference_seg"][1]
    session = StreamingSession(model, tokens, proactive=run["proactive"], reactive=not run["proactive"])
    stream, answer_block = drive(
        session,
        segments[0],
        lambda b: segments[b.frame + 1],
        plan,
        padding_rows=meta["padding_size"],
        prefill_order="user_first",
    )
    assert stream == tensors[f"{tag}_generated_ids"].tolist()
    assert plan.timestamps[answer_block] == run["output_timestamp"]
