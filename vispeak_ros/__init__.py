"""vispeak_ros: ViSpeak visual instruction feedback for ROS 2 robots.

Layers (arrows point down only): ros / tools -> runtime -> model -> core. Importing this package imports
nothing heavy; each layer pulls in its own dependencies when it is imported.

On a ROS 2 install this directory also holds the rosidl-generated `vispeak_ros.msg` subpackage.
"""

__version__ = "0.1.0"
