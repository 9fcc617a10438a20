"""What the TensorRT builder is handed, checked against the exported ONNX graphs run in onnxruntime: input and
output names and order, fixed dims, dtypes, and every optimisation profile's min / opt / max shapes (each one is
run, and the outputs have the shapes the runtime expects). No TensorRT is needed for any of this."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from vispeak_ros.engines.device_profiles import MAX_SEGMENT_ROWS, load_profiles
from vispeak_ros.engines.engine_cache import cache_key
from vispeak_ros.engines.export import step_io_names
from vispeak_ros.engines.tensorrt_build import (
    STEP_PROFILES,
    BuildError,
    build_request,
    graph_io,
    plan_builds,
    qdq_file,
)
from vispeak_ros.runtime.backends.artifacts import read_manifest
from vispeak_ros.runtime.backends.onnx_backend import open_session

PROFILES = load_profiles()


def _feeds(plan, shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in plan.inputs:
        shape = shapes[spec.name]
        if spec.name == "position_ids":
            past = shapes["past_key_0"][2]
            feeds[spec.name] = np.arange(past, past + shape[0], dtype=np.int64)
        else:
            feeds[spec.name] = (rng.standard_normal(shape) * 0.1).astype(spec.dtype)
    return feeds


@pytest.mark.parametrize("profile", ["agx_orin_64gb", "desktop_hopper"])
def test_step_plan_matches_the_graph_and_every_profile_shape_runs_in_onnxruntime(demo_export: Path, profile: str):
    manifest = read_manifest(demo_export)
    info = manifest["graphs"]["llm_step"]
    plans = {p.graph: p for p in plan_builds(demo_export, PROFILES[profile], "fp16", window_segments=2)}
    assert list(plans) == ["vision", "audio", "llm_step"]
    step = plans["llm_step"]
    names_in, names_out = step_io_names(info["layers"])
    assert [s.name for s in step.inputs] == names_in == info["inputs"]
    assert [s.name for s in step.outputs] == names_out == info["outputs"]
    graph = onnx.load(str(demo_export / "llm_step.onnx"), load_external_data=False).graph
    assert [v.name for v in graph.input] == names_in and [v.name for v in graph.output] == names_out
    assert step.onnx_path == demo_export / "llm_step.onnx" and step.onnx_sha256 == manifest["files"]["llm_step.onnx"]
    assert [name for name, _ in step.profiles] == list(STEP_PROFILES)
    assert step.flags == ("FP16",) and step.workspace_bytes == PROFILES[profile].workspace_mb << 20
    session = open_session(demo_export / "llm_step.onnx", "cpu")
    hidden, kv_heads, head_dim = info["hidden_size"], info["kv_heads"], info["head_dim"]
    for name, shapes in step.profiles:
        assert set(shapes) == set(names_in)  # every step input is dynamic and gets a range in every profile
        for pick in range(3):  # min, opt, max
            chosen = {k: v[pick] for k, v in shapes.items()}
            rows, past = chosen["user_embeds"][0], chosen["past_key_0"][2]
            assert chosen["user_embeds"] == chosen["agent_embeds"] == (rows, hidden)
            assert chosen["position_ids"] == (rows,)
            assert all(chosen[k] == (1, kv_heads, past, head_dim) for k in names_in[3:])
            out = dict(zip(names_out, session.run(None, _feeds(step, chosen)), strict=True))
            assert out["logits"].shape == (rows, info["vocab_size"]) and out["informative_logits"].shape == (rows,)
            assert all(out[k].shape == (1, kv_heads, rows, head_dim) for k in names_out[2:])
            assert np.isfinite(out["logits"]).all(), (name, pick)
        if name == "decode":
            assert [shape[0] for shape in shapes["user_embeds"]] == [1, 1, 1]
    segment = dict(step.profiles)["segment"]
    frame_rows = manifest["graphs"]["vision"]["frame_tokens"] + 1
    assert [s[0] for s in segment["user_embeds"]] == [1, frame_rows, MAX_SEGMENT_ROWS]
    sink, window = PROFILES[profile].max_sink_rows, 2 * (frame_rows + 13)
    assert [s[2] for s in segment["past_key_0"]] == [0, 64 + window, sink + window + MAX_SEGMENT_ROWS - 1]


def test_encoder_plans_are_static_and_match_onnxruntime_outputs(demo_export: Path):
    manifest = read_manifest(demo_export)
    plans = {p.graph: p for p in plan_builds(demo_export, PROFILES["desktop_ada"], "fp32", window_segments=2)}
    vision, audio = plans["vision"], plans["audio"]
    assert vision.profiles == () and audio.profiles == () and vision.flags == () and vision.precision == "fp32"
    size = manifest["graphs"]["vision"]["image_size"]
    assert [(s.name, s.dims, s.dtype) for s in vision.inputs] == [("pixel_values", (1, 3, size, size), "float32")]
    assert [(s.name, s.dims, s.dtype) for s in audio.inputs] == [
        ("fbank", (1, manifest["graphs"]["audio"]["frames"], 80), "float32"),
        ("lengths", (1,), "int64"),
    ]
    pixels = np.zeros((1, 3, size, size), np.float32)
    frame = open_session(demo_export / "vision.onnx", "cpu").run(None, {"pixel_values": pixels})[0]
    assert vision.outputs[0].name == "frame_tokens" and frame.shape == vision.outputs[0].dims
    feeds = {"fbank": np.full((1, 98, 80), 8.0, np.float32), "lengths": np.array([98])}
    tokens = open_session(demo_export / "audio.onnx", "cpu").run(None, feeds)[0]
    assert audio.outputs[0].name == "audio_tokens"
    assert tokens.shape == (
        1,
        manifest["graphs"]["audio"]["audio_tokens"],
        manifest["graphs"]["llm_step"]["hidden_size"],
    )


def test_precisions_outside_the_profile_or_without_a_qdq_graph_are_refused(demo_export: Path, tmp_path: Path):
    with pytest.raises(BuildError, match="precision fp8 is not available on device profile agx_orin_64gb"):
        plan_builds(demo_export, PROFILES["agx_orin_64gb"], "fp8", 2)
    with pytest.raises(BuildError, match="precision fp32 is not available on device profile orin_nx_nano"):
        plan_builds(demo_export, PROFILES["orin_nx_nano"], "fp32", 2)
    with pytest.raises(BuildError) as refused:
        plan_builds(demo_export, PROFILES["desktop_ada"], "int4", 2)
    message = str(refused.value)
    assert str(demo_export / qdq_file("int4")) in message and "nvidia-modelopt" in message
    assert "quantize_mode='int4'" in message
    with pytest.raises(BuildError, match="window_segments 121 exceeds"):
        plan_builds(demo_export, PROFILES["agx_orin_64gb"], "fp16", 121)
    with pytest.raises(BuildError, match="no ONNX export at"):
        plan_builds(tmp_path, PROFILES["agx_orin_64gb"], "fp16", 2)


def test_a_qdq_graph_must_keep_the_step_graphs_names(demo_export: Path, tmp_path: Path):
    import shutil

    from onnx import TensorProto, helper

    folder = tmp_path / "export"
    shutil.copytree(demo_export, folder)
    wrong = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "wrong",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", 64])],
    )
    onnx.save_model(helper.make_model(wrong), str(folder / qdq_file("int8")))
    with pytest.raises(BuildError, match="inputs/outputs differ"):
        plan_builds(folder, PROFILES["desktop_ada"], "int8", 2)
    inputs, outputs = graph_io(folder / qdq_file("int8"))
    assert [s.name for s in inputs] == ["x"] and outputs[0].dims == ("rows", 64)


def test_the_request_changes_with_precision_window_and_profile(demo_export: Path):
    from vispeak_ros.engines.engine_cache import Environment

    env = Environment("NVIDIA L4", "8.9", "10.3.0", "12.6", None)
    ada = PROFILES["desktop_ada"]

    def key(profile=ada, precision="fp16", window=2) -> str:
        plans = plan_builds(demo_export, profile, precision, window)
        return cache_key(env, build_request(plans, "a" * 64, profile))

    base = key()
    assert base == key()
    others = {key(precision="fp32"), key(window=3), key(profile=replace(ada, workspace_mb=4096)),
              key(profile=replace(ada, name="other"))}  # fmt: skip
    assert base not in others and len(others) == 4
    request = build_request(plan_builds(demo_export, ada, "fp16", 2), "a" * 64, ada)
    assert request.precision == "fp16" and set(request.graphs) == {"vision", "audio", "llm_step"}
    assert request.build_flags["llm_step"]["tf32"] is True and request.build_flags["vision"]["flags"] == ["FP16"]
    assert list(request.profile_shapes["llm_step"]) == ["segment", "decode"]
