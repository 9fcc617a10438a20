"""Graph-port adapters: Cyclone DDS (dds_adapter) and rclpy. Import the one you need; this package imports neither."""
