"""Conversions from ROS messages to model input: camera images to RGB arrays, audio to 16 kHz mono float32.

The functions take duck-typed messages (rclpy, rosbags and our DDS types alike). Importing this package is
cheap: OpenCV and PyAV are imported by `image` and `audio` only when something is decoded; never torch, rclpy or
cyclonedds.
"""

from vispeak_ros.ros.conversions.errors import ConversionError

__all__ = ["ConversionError"]
