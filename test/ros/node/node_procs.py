"""Starting the node, the player and the listener as separate processes in the test's isolated DDS domain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]


def proc_env(dds_env: dict[str, str]) -> dict[str, str]:
    env = dict(dds_env)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_node(dds_env: dict[str, str], *params: str) -> subprocess.Popen[str]:
    """`vispeak-node --transport dds --ros-args -p ...` (params as "name:=value")."""
    ros_args = [arg for p in params for arg in ("-p", p)]
    return subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "scripts" / "vispeak-node"), "--transport", "dds", "--ros-args", *ros_args],
        env=proc_env(dds_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_listener(dds_env: dict[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "listener.py")],
        env=proc_env(dds_env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "ready"
    return process


def play(dds_env: dict[str, str], recording: Path, *args: str, timeout: float = 240.0) -> dict:
    done = subprocess.run(
        [sys.executable, str(HERE / "player.py"), str(recording), *args],
        env=proc_env(dds_env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def stop_listener(process: subprocess.Popen[str]) -> dict:
    out, err = process.communicate(input="", timeout=30)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def stop_node(process: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM, as `ros2 launch` sends on Ctrl-C; (exit code, stderr)."""
    process.terminate()
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return process.returncode, err
