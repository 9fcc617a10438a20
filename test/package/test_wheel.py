"""A wheel built from the repository carries the message definitions and runs from an empty directory."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"  # setuptools builds in-tree: build from a copy, never litter the checkout
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("vispeak_ros-*.whl")
    return path


def test_wheel_holds_our_and_audio_common_message_definitions(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    ours = {f"vispeak_ros/interfaces/{p.name}" for p in (REPO_ROOT / "msg").glob("*.msg")}
    assert ours <= names
    assert any(n.startswith("vispeak_ros/ros/audio_common_msgs/mgonzs13/") for n in names)
    assert any(n.startswith("vispeak_ros/ros/audio_common_msgs/ros_drivers/") for n in names)
    assert not any(n.startswith(("test/", "benchmarks/")) for n in names)
    assert "vispeak_ros/data/demo_model/model.safetensors" in names
    profiles = {f"vispeak_ros/engines/profiles/{p.name}" for p in (REPO_ROOT / "engine" / "profiles").glob("*.yaml")}
    assert profiles and profiles <= names  # TensorRT device profiles, copied from engine/profiles
    assert any(n.startswith("vispeak_ros/data/demo_recording/") and n.endswith(".mcap") for n in names)


def test_installed_wheel_runs_the_demo_from_an_empty_directory(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    code = "import vispeak_ros, sys; print(vispeak_ros.__file__); from vispeak_ros.tools.demo import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=empty,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(str(target))  # the installed copy ran, not the source tree
    assert any(line.startswith("done: ") for line in lines) and lines[-1].startswith("wrote ")
    for name in ("demo_recording.vispeak.mcap", "demo_recording.timeline.png", "demo_recording.timeline.html"):
        assert (empty / name).is_file()  # outputs land in the current directory


def test_installed_wheel_reads_the_device_profiles_it_carries(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    code = "from vispeak_ros.engines.device_profiles import load_profiles as p, profiles_dir as d; print(d(), len(p()))"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(target)},
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    count = len(list((REPO_ROOT / "engine" / "profiles").glob("*.yaml")))
    assert result.stdout.split() == [str(target / "vispeak_ros" / "engines" / "profiles"), str(count)]
