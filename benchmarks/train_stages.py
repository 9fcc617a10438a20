"""The full recipe's training loop on CPU with the tiny model and tiny data in every official format: samples/s
of each stage (0 alignment, 1 offline, 2 streaming + informative head, 3 ViSpeak-Instruct) in one process, and
stage 2 in one vs two processes (`accelerate launch`, gloo, one thread each), measured side by side.

The 2-core machines here share their cores with everything else, so `scaling_2proc` (2-process samples/s over
1-process samples/s, ideal 2.0) says whether DDP over gloo overlaps work, not what GPUs would do. Timings exclude
process start and model loading (the runs' own `train_result.json`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from vispeak_ros.training.recipe import tiny
from vispeak_ros.training.recipe.run import run_stage
from vispeak_ros.training.recipe.stages import dump

DESCRIPTION = "full-recipe training loop on CPU (tiny model): stageN_samples_per_s, stage2 1 vs 2 processes"
REPO_ROOT = Path(__file__).resolve().parents[1]
TRAINING = REPO_ROOT / "training"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(config_path: Path, output: Path, processes: int) -> dict:
    cli = ["-m", "vispeak_ros.training.cli", "--stage", "2", "--config", str(config_path), "--output", str(output)]
    if processes == 1:
        command = [sys.executable, *cli]
    else:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                   str(TRAINING / "accelerate" / "cpu_2proc.yaml"), "--num_processes", str(processes),
                   "--main_process_port", str(_port()), "--num_cpu_threads_per_process", "1", *cli]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{processes}-process run failed: {done.stderr[-1500:]}")
    return json.loads((output / "train_result.json").read_text())


def run(quick: bool = False) -> dict:
    steps = 6 if quick else 24
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        entries = tiny.write_data(root / "data")
        base = tiny.write_base(root / "base", hidden=64)
        for stage in (0, 1, 2, 3):
            config = tiny.tiny_config(TRAINING, stage, base, max_steps=steps, batch=2, save_steps=10_000)
            result = run_stage(config, root / f"stage{stage}", entries=entries[str(stage)], log=lambda _: None)
            figures[f"stage{stage}_samples_per_s"] = round(result.samples_per_s, 2)
        config = tiny.tiny_config(TRAINING, 2, base, max_steps=steps, batch=1, save_steps=10_000)
        config.data = entries["2"] * 2  # enough items for one step of 1 x 2 processes
        path = root / "stage2_bench.yaml"
        path.write_text(dump(config), encoding="utf-8")
        one = _launch(path, root / "p1", 1)
        two = _launch(path, root / "p2", 2)
    figures["stage2_1proc_samples_per_s"] = one["samples_per_s"]
    figures["stage2_2proc_samples_per_s"] = two["samples_per_s"]
    figures["scaling_2proc"] = round(two["samples_per_s"] / max(one["samples_per_s"], 1e-9), 2)
    figures["steps"] = steps
    return figures
