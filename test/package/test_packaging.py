"""The repository is a valid ROS 2 package and a clean Python project, for every Python a robot runs."""

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_package_xml_is_valid_format_3_with_what_a_robot_needs():
    from catkin_pkg.package import parse_package

    package = parse_package(str(REPO_ROOT / "package.xml"))
    package.validate()
    assert package.package_format == 3 and package.name == "vispeak_ros"
    declared = {d.name for d in package.build_depends + package.exec_depends + package.buildtool_depends}
    needed = {
        "rclpy", "sensor_msgs", "std_msgs", "builtin_interfaces", "diagnostic_msgs", "audio_common_msgs",
        "cv_bridge", "rosidl_default_generators", "rosidl_default_runtime", "ament_cmake",
    }  # fmt: skip
    assert needed <= declared, f"package.xml lacks {sorted(needed - declared)}"
    assert "rosidl_interface_packages" in {g.name for g in package.member_of_groups}


def test_cmake_interface_list_equals_the_msg_folder():
    cmake = (REPO_ROOT / "CMakeLists.txt").read_text()
    listed = re.search(r"set\(msg_files(.*?)\)", cmake, re.S).group(1).split()
    assert sorted(s.strip('"') for s in listed) == sorted(f"msg/{p.name}" for p in (REPO_ROOT / "msg").glob("*.msg"))


def test_every_console_script_is_also_a_ros2_run_executable():
    setup = (REPO_ROOT / "setup.py").read_text()
    commands = re.findall(r'"(vispeak-[a-z-]+) = vispeak_ros\.[\w.]+:main"', setup)
    assert commands, "setup.py declares no console scripts"
    cmake = (REPO_ROOT / "CMakeLists.txt").read_text()
    programs = re.search(r"install\(PROGRAMS(.*?)DESTINATION", cmake, re.S).group(1).split()
    assert sorted(programs) == sorted(f"scripts/{c}" for c in commands)
    for command in commands:
        assert (REPO_ROOT / "scripts" / command).stat().st_mode & 0o111, f"scripts/{command} is not executable"


def test_core_imports_nothing_heavy():
    """Layers are lazy: the core needs numpy only, so a robot can use it without torch or DDS."""
    code = (
        "import sys, vispeak_ros.core, vispeak_ros.interfaces\n"
        "heavy = {'torch', 'transformers', 'rosbags', 'cyclonedds', 'cv2', 'av', 'soxr', 'rclpy'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_code_is_ruff_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_runs_on_python_3_10():
    """Robots run Humble (3.10) to Jazzy (3.12): no syntax or stdlib from a newer Python."""
    paths = [str(REPO_ROOT / p) for p in ("vispeak_ros", "benchmarks", "test", "setup.py")]
    vermin = str(Path(sys.executable).with_name("vermin"))
    result = subprocess.run(
        [vermin, "-t=3.10-", "--violations", "--no-tips", "--eval-annotations", *paths],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
