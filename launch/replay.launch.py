"""Replay a recording through the assistant: `ros2 launch vispeak_ros replay.launch.py bag:=/path/to/bag`.

Runs `vispeak-replay` (installed by this package under lib/vispeak_ros) with the arguments below. In `mode:=fast`
the assistant runs inside the replay process; in `mode:=paced` the recording is published in real time over
Cyclone DDS into a vispeak node that must already be running (`ros2 launch vispeak_ros assistant.launch.py`), and
the node's feedback, events and informative scores are recorded. Outputs: `<name>.vispeak.mcap`,
`<name>.timeline.png` and `<name>.timeline.html` in `output_dir`.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackagePrefix

ARGUMENTS = (
    ("bag", "", "the recording: a rosbag2 folder (mcap or sqlite3), an .mcap file, or a video file"),
    ("checkpoint", "", "checkpoint directory (empty: the bundled demo model)"),
    ("output_dir", ".", "where the output recording and the timeline go (default: the directory launch ran in)"),
    ("mode", "fast", "fast: in-process, deterministic; paced: real time over DDS into a running vispeak node"),
    ("rate", "1.0", "paced mode: playback speed factor"),
)


def generate_launch_description() -> LaunchDescription:
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=text) for name, default, text in ARGUMENTS
    ]
    executable = PathJoinSubstitution([FindPackagePrefix("vispeak_ros"), "lib", "vispeak_ros", "vispeak-replay"])
    replay = ExecuteProcess(
        cmd=[
            executable,
            LaunchConfiguration("bag"),
            "--checkpoint",
            LaunchConfiguration("checkpoint"),
            "--output-dir",
            LaunchConfiguration("output_dir"),
            "--mode",
            LaunchConfiguration("mode"),
            "--rate",
            LaunchConfiguration("rate"),
        ],
        name="vispeak_replay",
        output="screen",
    )
    return LaunchDescription([*declared, replay])
