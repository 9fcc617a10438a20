"""`vispeak-train --stage N --config ...` runs a stage in one process and under `accelerate launch` with two CPU
processes (gloo), writes logs and a loadable merged model, refuses bad input in one line; the ZeRO-2 config parses
with DeepSpeed's own config class where DeepSpeed imports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vispeak_ros.model.loader import load_checkpoint
from vispeak_ros.training.cli import main
from vispeak_ros.training.recipe import tiny
from vispeak_ros.training.recipe.stages import dump

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAINING = REPO_ROOT / "training"


@pytest.fixture(scope="module")
def stage2_yaml(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("launch")
    entries = tiny.write_data(root / "data")
    config = tiny.tiny_config(TRAINING, 2, tiny.write_base(root / "base"), max_steps=2, save_steps=100)
    config.data = entries["2"]
    path = root / "tiny_stage2.yaml"
    path.write_text(dump(config), encoding="utf-8")
    return path


def logged_steps(output: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (output / "logs" / "scalars.jsonl").read_text().splitlines()]


def test_one_process_run_through_vispeak_train(stage2_yaml, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--stage", "2", "--config", str(stage2_yaml), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 process(es) x batch 1" in printed and "step 2/2 loss" in printed and "samples/s" in printed
    assert logged_steps(out) == [1, 2]
    assert (out / "checkpoint-2").is_dir() and (out / "stage.yaml").is_file()
    assert load_checkpoint(out / "model").informative_head is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_under_accelerate_launch(stage2_yaml, tmp_path):
    out = tmp_path / "run2"
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(TRAINING / "accelerate" / "cpu_2proc.yaml"),
        "--main_process_port", str(free_port()), "--num_cpu_threads_per_process", "1",
        "-m", "vispeak_ros.training.cli", "--stage", "2", "--config", str(stage2_yaml), "--output", str(out),
    ]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "2 process(es) x batch 1" in done.stdout  # the main process reports, once
    assert done.stdout.count("step 2/2 loss") == 1
    assert logged_steps(out) == [1, 2]
    model = load_checkpoint(out / "model")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_bad_input_fails_in_one_line(stage2_yaml, tmp_path, capsys):
    assert main(["--stage", "1", "--config", str(stage2_yaml), "--output", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.strip().endswith("is a stage 2 config, not stage 1")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: 2\ntrain: {lr: 1.0e-4, learning_rate: 1}\n", encoding="utf-8")
    assert main(["--stage", "2", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown key(s) learning_rate" in err
    with pytest.raises(SystemExit):
        main(["--stage", "4", "--config", str(bad)])


def test_zero2_config_parses_with_deepspeeds_own_class():
    deepspeed = pytest.importorskip("deepspeed", reason="DeepSpeed is not installed (it needs CUDA to be useful)")
    from deepspeed.runtime.config import DeepSpeedConfig

    raw = json.loads((TRAINING / "deepspeed" / "zero2.json").read_text())
    resolved = {**raw, "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 4, "train_batch_size": 8,
                "gradient_clipping": 1.0, "bf16": {"enabled": True}, "fp16": {"enabled": False}}  # fmt: skip
    config = DeepSpeedConfig(resolved)
    assert config.zero_optimization_stage == 2 and deepspeed.__version__
