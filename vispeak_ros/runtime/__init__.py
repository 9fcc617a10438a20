"""Runtime layer: the assistant loop over the model session, independent of ROS.

The same runtime serves the ROS node, bag replay, the demo and evaluation.
"""
