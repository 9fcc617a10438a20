"""ROS layer: message conversions, the graph port, node and transport adapters.

Importing this package imports nothing heavy; rclpy and Cyclone DDS are imported only by the adapters that need
them, so conversions and interface definitions work (and are tested) without a ROS install.
"""
