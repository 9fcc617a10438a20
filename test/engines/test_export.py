"""ONNX export: valid graphs, reproducible bytes, the streaming I/O contract, and onnxruntime CPU = torch."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from vispeak_ros.engines.export import export_onnx, step_io_names
from vispeak_ros.model.session import StreamingSession, TorchLLMStep
from vispeak_ros.runtime.backends.artifacts import read_manifest
from vispeak_ros.runtime.backends.onnx_backend import OnnxBackend, OnnxLLMStep, open_session

TOL = 1e-4
REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "official_tiny"


def test_every_graph_passes_the_onnx_checker(demo_export: Path):
    manifest = read_manifest(demo_export)
    assert set(manifest["graphs"]) == {"vision", "audio", "llm_step"}
    for graph in manifest["graphs"].values():
        onnx.checker.check_model(str(demo_export / graph["file"]), full_check=True)


def test_export_is_reproducible(demo_model, demo_export: Path, tmp_path: Path):
    again = tmp_path / "again"
    export_onnx(demo_model, again, checksum=read_manifest(demo_export)["model_checksum"])
    names = sorted(p.name for p in demo_export.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (demo_export / name).read_bytes() == (again / name).read_bytes(), name


def test_step_graph_has_streaming_dynamic_axes(demo_export: Path):
    graph = onnx.load(str(demo_export / "llm_step.onnx")).graph
    layers = read_manifest(demo_export)["graphs"]["llm_step"]["layers"]
    inputs, outputs = step_io_names(layers)
    assert [i.name for i in graph.input] == inputs
    assert [o.name for o in graph.output] == outputs

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    shapes = {v.name: dims(v) for v in [*graph.input, *graph.output]}
    assert shapes["user_embeds"] == ["rows", 64] and shapes["position_ids"] == ["rows"]
    assert shapes["past_key_0"] == [1, 2, "past_rows", 16] and shapes["new_value_2"] == [1, 2, "rows", 16]
    assert shapes["logits"] == ["rows", 212] and shapes["informative_logits"] == ["rows"]
    # the streaming shapes run: an 89-row segment prefill over an empty cache, then a one-token decode step
    session = open_session(demo_export / "llm_step.onnx", "cpu")
    for rows, past in ((89, 0), (1, 89)):
        feeds = {"user_embeds": np.zeros((rows, 64), np.float32), "agent_embeds": np.zeros((rows, 64), np.float32)}
        feeds["position_ids"] = np.arange(past, past + rows)
        feeds |= {name: np.zeros((1, 2, past, 16), np.float32) for name in inputs[3:]}
        out = session.run(None, feeds)
        assert out[0].shape == (rows, 212) and out[2].shape == (1, 2, rows, 16)


def _frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(count)]


def test_onnxruntime_equals_torch_over_several_segments_with_eviction(demo_model, demo_export: Path):
    """Blocks, decisions, informative probabilities, label scores and the KV cache after 5 windowed segments
    (evictions and key re-rotation included)."""
    from vispeak_ros.runtime.backends.torch_backend import TorchBackend

    tokenizer = demo_model.tokenizer
    options = {"threshold": 0.35, "window_segments": 1, "max_answer_tokens": 8}
    ours = OnnxBackend(demo_export, tokenizer, **options)
    theirs = TorchBackend(demo_model, tokenizer, **options)
    for backend in (ours, theirs):
        backend.start([*tokenizer.encode("You are a helpful assistant."), backend.tokens.seg])
    audio = (np.random.default_rng(1).standard_normal(16000) * 0.05).astype(np.float32)
    with torch.no_grad():
        for frame in _frames(5):
            blocks = [(b.frame_block(frame), b.audio_block(audio)) for b in (ours, theirs)]
            torch.testing.assert_close(blocks[0][0], blocks[1][0], atol=TOL, rtol=TOL)
            torch.testing.assert_close(blocks[0][1], blocks[1][1], atol=TOL, rtol=TOL)
            for kind, index in (("frame", 0), ("audio", 1)):
                a, b = ours.step(blocks[0][index], kind), theirs.step(blocks[1][index], kind)
                assert (a.started_ids, a.ended, a.previous_ids) == (b.started_ids, b.ended, b.previous_ids)
                assert (a.informative_prob is None) == (b.informative_prob is None)
                if a.informative_prob is not None:
                    assert abs(a.informative_prob - b.informative_prob) < TOL
    assert ours.cache_length() == theirs.cache_length() < ours.session.rows_seen  # segments were evicted
    for a, b in zip(ours.session.cache.layers, theirs.session.cache.layers, strict=True):
        np.testing.assert_allclose(a.keys, b.keys.numpy(), atol=TOL, rtol=TOL)
        np.testing.assert_allclose(a.values, b.values.numpy(), atol=TOL, rtol=TOL)
    probe = torch.from_numpy(np.random.default_rng(2).standard_normal((3, 64)).astype(np.float32))
    agent = tokenizer.encode("Hello! How can")
    logits = [b.session.probe(probe, agent) for b in (ours, theirs)]  # all rows' logits on the evicted cache
    assert logits[0].shape == (3, 212) and float((logits[0] - logits[1]).abs().max()) < TOL
    scores = [b.score([b.tokens.proactive], [tokenizer.encode("Hello!")]) for b in (ours, theirs)]
    assert abs(scores[0][0] - scores[1][0]) < TOL


@pytest.fixture(scope="module")
def reference_export(tmp_path_factory: pytest.TempPathFactory):
    if not (REFERENCE / "reference_io.json").is_file():
        pytest.skip(f"official tiny reference not found at {REFERENCE.resolve()}")
    from vispeak_ros.model import load_checkpoint

    model = load_checkpoint(REFERENCE / "tiny_model")
    folder = tmp_path_factory.mktemp("onnx") / "reference"
    export_onnx(model, folder, checksum="official-tiny")
    return model, folder


def test_onnxruntime_reproduces_the_official_streaming_run_of_the_tiny_reference(reference_export):
    """The official stream (user-first prefill, then segments, then padding) through an onnxruntime session: the
    official token ids, and torch's logits, informative logits and KV cache within 1e-4."""
    from safetensors.numpy import load_file
    from safetensors.torch import load_file as load_torch

    from vispeak_ros.model.tokenizer import SpecialTokens

    model, folder = reference_export
    meta = json.loads((REFERENCE / "reference_io.json").read_text())
    t = load_torch(str(REFERENCE / "reference_io.safetensors"))
    ids = meta["token_ids"]
    tokens = SpecialTokens(
        seg=ids["seg_token_chosen"], pad=ids["pad_chosen"], im_end=ids["im_end_stop"],
        proactive=ids["proactive_forced_first_token"],
    )  # fmt: skip
    with torch.no_grad():
        images = model.encode_images(t["images_int8"].float() / 32.0)
        audio = model.encode_audio(t["audio_fbank"], t["audio_lengths"])
        user = model.embed_user_stream(t["user_input_ids"], images, audio)
    manifest = read_manifest(folder)
    table = load_file(str(folder / "embeddings.safetensors"))["embed_tokens"]
    run = meta["streaming"]["stream_proactive"]
    start = run["start_inference_seg"][1]
    bounds = [0] + [p + 1 for p in meta["seg_positions"]]
    segments = [user[a:b] for a, b in itertools.pairwise(bounds)]
    first = bounds.index(start)
    outputs = []
    for step in (OnnxLLMStep(open_session(folder / "llm_step.onnx", "cpu"), manifest, table), TorchLLMStep(model)):
        session = StreamingSession(step, tokens, proactive=True, record_logits=True)
        with torch.no_grad():
            results = [
                session.start(segments[:first], t["agent_input_ids"][:start].tolist(), prefill_order="user_first")
            ]
            results += [session.feed(segment) for segment in segments[first:]]
            results.append(session.finish(meta["padding_size"]))
        outputs.append((results, session))
    (ours, ours_session), (theirs, theirs_session) = outputs
    emitted = [tok for r in ours for tok in r.emitted][start - 1 :]
    assert emitted == t["stream_proactive_generated_ids"].tolist()
    assert emitted == [tok for r in theirs for tok in r.emitted][start - 1 :]
    for field in ("logits", "informative_logits"):  # [~300, 152064] logits: a plain max is 10x faster than isclose
        a, b = (torch.cat([getattr(r, field) for r in results]) for results in (ours, theirs))
        assert a.shape == b.shape and float((a - b).abs().max()) < TOL, field
    for a, b in zip(ours_session.cache.layers, theirs_session.cache.layers, strict=True):
        np.testing.assert_allclose(a.keys, b.keys.numpy(), atol=TOL, rtol=TOL)
        np.testing.assert_allclose(a.values, b.values.numpy(), atol=TOL, rtol=TOL)
