"""docker/ recipes stay consistent with the repository (they are not built by CI: no Docker, no ROS here)."""

import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER = REPO_ROOT / "docker"


def test_every_recipe_says_it_is_not_run_by_ci_and_uses_a_system_site_packages_venv() -> None:
    for name in ("humble", "jazzy", "l4t"):
        text = (DOCKER / f"{name}.Dockerfile").read_text()
        assert "NOT RUN BY OUR CI" in text, name
        assert "python3 -m venv --system-site-packages" in text, name
        assert "rosdep install --from-paths src --ignore-src" in text, name
        assert "colcon build --packages-up-to vispeak_ros" in text, name
        assert "numpy<2" in text, name  # ROS's message extensions are built against NumPy 1
    for name in ("humble", "jazzy"):
        assert 'ARG TORCH_SPEC="torch==2.13.0"' in (DOCKER / f"{name}.Dockerfile").read_text()
    assert "Not run by our CI" in (DOCKER / "README.md").read_text()


def test_ros_check_is_valid_bash_and_points_at_existing_tests() -> None:
    script = DOCKER / "ros_check.sh"
    assert script.stat().st_mode & 0o111, "ros_check.sh is not executable"
    subprocess.run(["bash", "-n", str(script)], check=True)
    paths = re.findall(r'"\$\{SRC\}/([\w/]+)"', script.read_text())
    assert "test/ros/with_rclpy" in paths
    for relative in paths:
        assert (REPO_ROOT / relative).exists(), relative


def test_the_build_context_leaves_the_venv_and_build_outputs_out() -> None:
    ignored = set((REPO_ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".git", "build", "install", "log"} <= ignored
