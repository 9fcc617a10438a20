"""Running the helper peer process (dds_peer.py) in the test's isolated environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER = HERE / "dds_peer.py"
REPO_ROOT = HERE.parents[2]


def peer_env(dds_env: dict[str, str]) -> dict[str, str]:
    """The isolated environment, with the checkout importable whether or not vispeak_ros is installed."""
    env = dict(dds_env)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_peer(dds_env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(PEER), *args],
        env=peer_env(dds_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 30.0) -> tuple[dict, str]:
    """Wait for a peer; (its JSON report from the last stdout line, its stderr). Fails loudly on a crash."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"peer {process.args[2:]} timed out; stderr:\n{err}") from None
    if process.returncode != 0:
        raise AssertionError(f"peer {process.args[2:]} exited {process.returncode}; stderr:\n{err}")
    lines = [line for line in out.splitlines() if line.strip()]
    if not lines:
        raise AssertionError(f"peer {process.args[2:]} printed no report; stderr:\n{err}")
    return json.loads(lines[-1]), err
