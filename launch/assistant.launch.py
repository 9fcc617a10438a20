"""Launch the vispeak assistant: camera + microphone in; feedback, events, speech and an advisory stop lock out.

    ros2 launch vispeak_ros assistant.launch.py camera_topic:=/camera/color/image_raw audio_topic:=/audio

The node is a lifecycle node that configures (loads the model) and activates itself: on Humble, launch cannot
autostart lifecycle nodes. Every node parameter is in config/assistant.yaml (`params_file`); the arguments here
override the most common ones.

SAFETY: the stop lock (~/stop_lock, and the optional twist_mux lock below) is ADVISORY and NOT SAFETY-RATED.
It does not replace a certified safety controller, emergency stop or safety-rated sensor.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("vispeak_ros")
    arguments = [
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([share, "config", "assistant.yaml"]),
            description="ROS 2 params file with every node parameter",
        ),
        DeclareLaunchArgument("camera_topic", default_value="camera/image_raw", description="camera topic to watch"),
        DeclareLaunchArgument(
            "camera_transport",
            default_value="raw",
            description="raw (sensor_msgs/Image) or compressed (sensor_msgs/CompressedImage)",
        ),
        DeclareLaunchArgument(
            "audio_topic",
            default_value="audio",
            description="microphone topic (ros_drivers: its audio_stamped topic; audio_info stays beside it)",
        ),
        DeclareLaunchArgument(
            "audio_flavour",
            default_value="mgonzs13",
            description="audio_common_msgs variant: mgonzs13, ros_drivers or none",
        ),
        DeclareLaunchArgument(
            "checkpoint",
            default_value="",
            description="checkpoint (or engine) directory; empty = the bundled demo model",
        ),
        DeclareLaunchArgument("backend", default_value="torch", description="inference backend"),
        DeclareLaunchArgument(
            "use_sim_time", default_value="false", description="follow /clock (bag replay, simulation)"
        ),
        DeclareLaunchArgument(
            "speech_sink",
            default_value="topic",
            description="topic (~/speech strings) or tts_action (goals to audio_common's say action)",
        ),
        DeclareLaunchArgument(
            "twist_mux",
            default_value="false",
            description="also start twist_mux with config/twist_mux.yaml, whose top lock is our ~/stop_lock",
        ),
        DeclareLaunchArgument("log_level", default_value="info", description="node log level"),
    ]
    assistant = LifecycleNode(
        package="vispeak_ros",
        executable="vispeak-node",
        name="vispeak",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        emulate_tty=True,
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "camera_transport": LaunchConfiguration("camera_transport"),
                "audio_flavour": LaunchConfiguration("audio_flavour"),
                "checkpoint": LaunchConfiguration("checkpoint"),
                "backend": LaunchConfiguration("backend"),
                "use_sim_time": LaunchConfiguration("use_sim_time"),
                "speech_sink": LaunchConfiguration("speech_sink"),
            },
        ],
        remappings=[
            ("camera/image_raw", LaunchConfiguration("camera_topic")),
            ("camera/image_raw/compressed", LaunchConfiguration("camera_topic")),
            ("audio", LaunchConfiguration("audio_topic")),
            ("audio_stamped", LaunchConfiguration("audio_topic")),
        ],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
    )
    mux = Node(
        package="twist_mux",
        executable="twist_mux",
        name="twist_mux",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[PathJoinSubstitution([share, "config", "twist_mux.yaml"])],
        remappings=[("cmd_vel_out", "cmd_vel")],
        condition=IfCondition(LaunchConfiguration("twist_mux")),
    )
    notice = LogInfo(
        msg="vispeak: the stop lock is ADVISORY and NOT SAFETY-RATED; it does not replace a certified safety controller"
    )
    return LaunchDescription([*arguments, notice, assistant, mux])
