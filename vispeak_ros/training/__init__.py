"""Offline training: the synthetic gesture world and, on top of it, the tiny demo model's training (no ROS, no GPU)."""
