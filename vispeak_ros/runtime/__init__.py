"""Runtime layer: the assistant loop over the model session, independent of ROS.

The same runtime serves the ROS node, bag replay, the demo and evaluation. Importing it imports neither ROS nor
torch; the torch backend is loaded when an assistant is built over a model (`Assistant.from_model`, or
`Assistant(config)` which loads the configured checkpoint).
"""

from vispeak_ros.runtime.assistant import Assistant
from vispeak_ros.runtime.backends.base import Backend, StepResult
from vispeak_ros.runtime.config import ConfigError, RuntimeConfig, load_config
from vispeak_ros.runtime.outputs import (
    FeedbackChunk,
    FinalAnswer,
    InformativeRecord,
    Output,
    SpeechCancel,
    StateChange,
    TypedEvent,
)
from vispeak_ros.runtime.worker import Emitted, Worker, WorkerStats

__all__ = [
    "Assistant",
    "Backend",
    "ConfigError",
    "Emitted",
    "FeedbackChunk",
    "FinalAnswer",
    "InformativeRecord",
    "Output",
    "RuntimeConfig",
    "SpeechCancel",
    "StateChange",
    "StepResult",
    "TypedEvent",
    "Worker",
    "WorkerStats",
    "load_config",
]
