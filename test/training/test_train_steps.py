"""A few training steps reduce the loss; the saved checkpoint reloads strictly through `load_checkpoint` with the
same outputs; `vispeak-train` refuses bad arguments in one line."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from vispeak_ros.model.loader import load_checkpoint
from vispeak_ros.training import world
from vispeak_ros.training.cli import main
from vispeak_ros.training.tokenizer_build import build_tokenizer, save_tokenizer
from vispeak_ros.training.trainer import (
    Prepared,
    Recipe,
    new_model,
    prepare,
    save_checkpoint,
    set_cmvn,
    step_loss,
    train,
)


def test_steps_reduce_loss_and_checkpoint_reloads_strictly(tmp_path):
    torch.set_num_threads(2)
    recipe = replace(Recipe(), hidden_size=32, num_layers=1, vision_hidden=16, lr=5e-3, warmup=0.0, steps=30)
    model = new_model(recipe, save_tokenizer(build_tokenizer(), tmp_path / "ck"))
    streams = [world.generate(s, i + 3, size=(160, 160), fps=1.0) for i, s in enumerate(("wake_up", "interrupt"))]
    set_cmvn(model, streams)
    data: Prepared = prepare(model, streams, log=lambda _: None)

    def mean_loss() -> float:
        with torch.no_grad():
            return sum(float(step_loss(model, s, f)[0]) for s, f in zip(data.samples, data.features, strict=True)) / 2

    before = mean_loss()
    train(model, data, recipe, log=lambda _: None)
    after = mean_loss()
    assert after < 0.8 * before, (before, after)

    folder = save_checkpoint(model, tmp_path / "ck")
    loaded = load_checkpoint(folder)
    assert loaded.tokenizer is not None and len(loaded.tokenizer) == len(model.tokenizer)
    mine = dict(model.state_dict())
    for key, value in loaded.state_dict().items():
        torch.testing.assert_close(value, mine[key])
    sample, feats = data.samples[0], data.features[0]
    with torch.no_grad():
        assert float(step_loss(loaded, sample, feats)[0]) == pytest.approx(float(step_loss(model, sample, feats)[0]))


def test_cli_help_and_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--output" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["--output", str(tmp_path), "--steps", "0"])
    assert exit_info.value.code == 2
    capsys.readouterr()
    bad = tmp_path / "recipe.yaml"
    bad.write_text("not_a_key: 1\n")
    assert main(["--output", str(tmp_path / "out"), "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not_a_key" in err[0]


def test_console_launcher_runs_help():
    out = subprocess.run(
        [sys.executable, "scripts/vispeak-train", "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 0 and "vispeak-train" in out.stdout
