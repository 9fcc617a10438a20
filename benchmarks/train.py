"""Demo-model training cost on CPU: training samples/s (one stream of about 1,000 rows per sample, the demo recipe)
and the wall time to retrain the shipped demo checkpoint from scratch (generate the world, cache the frozen encoders,
train; no evaluation; with a recipe that turns it on, the vision tower's stage 0 too).

--quick times a few streams and steps and estimates retrain_s from them (`retrain_estimated=1`); the full run
retrains for real into a temporary folder (`retrain_estimated=0`).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from vispeak_ros.training import world
from vispeak_ros.training.tokenizer_build import build_tokenizer, save_tokenizer
from vispeak_ros.training.trainer import Recipe, new_model, prepare, run_recipe, set_cmvn, train
from vispeak_ros.training.vision_pretrain import pretrain_vision

DESCRIPTION = "demo-model training on CPU: samples_per_s, retrain_s (wall time to retrain the demo checkpoint)"


def _estimate(recipe: Recipe, folder: Path) -> dict:
    torch.set_num_threads(recipe.threads)
    model = new_model(recipe, save_tokenizer(build_tokenizer(), folder))
    streams = [world.generate(s, i + 1, size=(240, 240), fps=1.0) for i, s in enumerate(world.SCENARIOS)]
    vision_s = 0.0
    if recipe.vision_steps:  # stage 0 of the vision tower (training/demo_vision.yaml): time 10 of its steps
        t0 = time.monotonic()
        pretrain_vision(model, streams, 10, batch=recipe.vision_batch, log=lambda _: None)
        vision_s = (time.monotonic() - t0) / 10 * recipe.vision_steps
    t0 = time.monotonic()
    set_cmvn(model, streams)
    data = prepare(model, streams, log=lambda _: None)
    per_stream = (time.monotonic() - t0) / len(streams)
    steps = 30
    result = train(model, data, replace(recipe, steps=steps), log=lambda _: None)
    count = recipe.streams_per_scenario * len(world.SCENARIOS) + recipe.sessions + recipe.idle_streams
    idle_share = recipe.idle_streams * recipe.idle_seconds / 12.0  # in scenario-stream lengths (~12 s each)
    # sessions are longer: +20 %
    retrain = per_stream * (count - recipe.idle_streams + idle_share) * 1.2 + recipe.steps / result.samples_per_s
    return {
        "samples_per_s": round(result.samples_per_s, 2),
        "vision_s": round(vision_s, 1),
        "retrain_s": round(retrain + vision_s, 1),
        "retrain_estimated": 1,
        "steps": recipe.steps,
        "streams": count,
    }


def run(quick: bool = False) -> dict:
    recipe = Recipe()
    with tempfile.TemporaryDirectory() as tmp:
        if quick:
            return _estimate(recipe, Path(tmp))
        t0 = time.monotonic()
        info = run_recipe(recipe, Path(tmp) / "demo_model", log=lambda _: None, evaluate_after=False)
        return {
            "samples_per_s": info["samples_per_s"],
            "vision_s": info["vision_s"],
            "retrain_s": round(time.monotonic() - t0, 1),
            "retrain_estimated": 0,
            "steps": recipe.steps,
            "streams": info["streams"],
        }
