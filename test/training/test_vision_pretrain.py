"""Stage 0 of the demo recipe: the targets say what the world drew where, and a few steps teach the tower to read
them (then it is frozen again)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from vispeak_ros.training import world
from vispeak_ros.training.tokenizer_build import build_tokenizer, save_tokenizer
from vispeak_ros.training.trainer import Recipe, new_model
from vispeak_ros.training.vision_pretrain import (
    IGNORE,
    OBJECTS,
    PARTS,
    POSES,
    collect,
    pose_index,
    pretrain_vision,
    recolour,
    token_targets,
)

GRID = 8


def _stream(scenario: str, seed: int = 11) -> world.Stream:
    return world.generate(scenario, seed, size=(160, 160), fps=1.0)


@pytest.mark.parametrize("scenario, pose", [("wake_up", "wave"), ("interrupt", "palm"), ("point", "point")])
def test_pose_is_standing_before_the_gesture_and_the_gesture_while_it_is_held(scenario, pose):
    stream = _stream(scenario)
    action = stream.actions[0]
    assert pose_index(stream, action.start - 0.5) == POSES.index("standing")
    assert pose_index(stream, action.start + 0.1) == IGNORE  # the arm is still rising
    assert pose_index(stream, (action.start + world.RAMP_S + action.end) / 2) == POSES.index(pose)
    assert pose_index(stream, action.end + world.RAMP_S + 0.5) == POSES.index("standing")


def test_a_fall_is_in_between_then_fallen_for_good():
    stream = _stream("fall")
    fall = stream.actions[0]
    assert pose_index(stream, fall.start + 0.1 * fall.fall_s) == IGNORE
    assert pose_index(stream, fall.start + fall.fall_s) == POSES.index("fallen")
    assert pose_index(stream, stream.duration_s - 0.1) == POSES.index("fallen")


def test_gesture_targets_sit_on_the_moved_arm_above_the_standing_body():
    stream = _stream("wake_up")
    action = stream.actions[0]
    poses, _ = token_targets(stream, action.end - 0.1, GRID)
    grid = poses.reshape(GRID, GRID)
    wave_rows = np.nonzero(grid == PARTS.index("wave"))[0]
    body_rows = np.nonzero(grid == PARTS.index("body"))[0]
    assert len(wave_rows) and len(body_rows)
    assert wave_rows.mean() < body_rows.mean()  # the raised arm, not the legs
    assert set(np.unique(grid)) <= {IGNORE, 0, 1, PARTS.index("wave")}
    standing, _ = token_targets(stream, action.start - 0.5, GRID)
    assert set(np.unique(standing)) <= {IGNORE, 0, 1}  # no gesture anywhere


def test_object_targets_name_the_visible_objects_only():
    stream = _stream("point")  # a point scenario always shows its objects
    _, objects = token_targets(stream, 0.0, GRID)
    named = {OBJECTS[k - 1] for k in np.unique(objects) if k > 0}
    assert named == {obj.name for obj in stream.scene.objects}
    hidden = next(s for s in (_stream("wake_up", seed) for seed in range(20, 60)) if not s.scene.objects_visible)
    _, none = token_targets(hidden, 0.0, GRID)
    assert set(np.unique(none)) <= {0}


def test_recolour_keeps_shapes_and_drops_the_object_targets_it_recolours():
    frame = np.zeros((4, 4, 3), np.uint8)
    frame[..., 0] = 200
    objects = torch.ones(2, 16, dtype=torch.int64)
    out, targets = recolour([frame, frame], objects, np.random.default_rng(0), share=1.0)
    assert all(o.shape == frame.shape and not np.array_equal(o, frame) for o in out)
    assert (targets == IGNORE).all() and (objects == 1).all()
    same, kept = recolour([frame], objects[:1], np.random.default_rng(0), share=0.0)
    assert np.array_equal(same[0], frame) and torch.equal(kept, objects[:1])


def test_a_few_steps_train_the_tower_and_leave_it_frozen(tmp_path):
    torch.set_num_threads(2)
    recipe = replace(Recipe(), hidden_size=32, num_layers=1, vision_hidden=16, image_size=112, pooling_size=1)
    model = new_model(recipe, save_tokenizer(build_tokenizer(), tmp_path))
    streams = [_stream(s, 5) for s in ("wake_up", "fall", "none")]
    assert len(collect(streams, 4).frames) > 10
    before = {k: v.clone() for k, v in model.vision_tower.state_dict().items()}
    first = pretrain_vision(model, streams, steps=5, batch=4, log=lambda _: None)
    assert any(not torch.equal(v, before[k]) for k, v in model.vision_tower.state_dict().items())
    assert not any(p.requires_grad for p in model.vision_tower.parameters()) and not model.vision_tower.training
    assert np.isfinite(first["vision_loss"]) and 0.0 <= first["vision_pose_accuracy"] <= 1.0
    model_b = new_model(recipe, model.tokenizer)
    longer = pretrain_vision(model_b, streams, steps=60, batch=4, lr=3e-3, log=lambda _: None)
    assert longer["vision_loss"] < first["vision_loss"]


def test_the_vision_config_gives_the_llm_as_many_tokens_per_frame_as_the_shipped_tower():
    from pathlib import Path

    from vispeak_ros.training.trainer import demo_config

    recipe = Recipe.from_yaml(Path(__file__).parents[2] / "training" / "demo_vision.yaml")
    assert recipe.vision_steps > 0 and Recipe().vision_steps == 0  # opt-in: the shipped weights have no stage 0
    assert demo_config(recipe, 100).tokens_per_frame == demo_config(Recipe(), 100).tokens_per_frame == 64
