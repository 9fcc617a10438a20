"""Every parameter of the `vispeak` node, in one table: the node declares them from it, config/assistant.yaml and
the README table are checked against it, and the runtime-tunable ones are handled by the parameter callback.

Imports nothing heavy (no ROS, no torch), so launch files and tests can read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vispeak_ros.core.trigger import DEFAULT_THRESHOLD
from vispeak_ros.ros.port import ParameterDescriptor
from vispeak_ros.runtime.config import (
    ALIGNMENTS,
    BACKENDS,
    BEHAVIOURS,
    DTYPES,
    ENGINE_PRECISIONS,
    FRAME_POLICIES,
    ORT_PROVIDERS,
    SYSTEM_PROMPTS,
    RuntimeConfig,
)

_RUNTIME = RuntimeConfig()  # the runtime's defaults are the node's defaults


@dataclass(frozen=True)
class NodeParameter:
    name: str
    default: Any
    descriptor: ParameterDescriptor
    tunable: bool = False  # may change while the node runs (`ros2 param set`)

    @property
    def type_name(self) -> str:
        if isinstance(self.default, bool):
            return "bool"
        if isinstance(self.default, (list, tuple)):
            return "string[]"
        return {int: "int", float: "double", str: "string"}[type(self.default)]


def _p(name: str, default: Any, description: str, *, tunable: bool = False, read_only: bool = False, **bounds):
    choices = tuple(bounds.pop("choices", ()))
    return NodeParameter(name, default, ParameterDescriptor(description, read_only, choices=choices, **bounds), tunable)


PARAMETERS: tuple[NodeParameter, ...] = (
    # -- inputs ------------------------------------------------------------------------------------------------
    _p(
        "camera_transport",
        "raw",
        "raw: sensor_msgs/Image on camera/image_raw; compressed: sensor_msgs/"
        "CompressedImage on camera/image_raw/compressed",
        read_only=True,
        choices=("raw", "compressed"),
    ),
    _p(
        "audio_flavour",
        "mgonzs13",
        "audio_common_msgs variant: mgonzs13 (AudioStamped on audio), ros_drivers "
        "(AudioDataStamped on audio_stamped + AudioInfo on audio_info), or none (video only)",
        read_only=True,
        choices=("mgonzs13", "ros_drivers", "none"),
    ),
    _p(
        "audio_stamped",
        True,
        "ros_drivers only: false subscribes the unstamped audio topic and stamps chunks "
        "from the sample count, anchored at the first arrival",
        read_only=True,
    ),
    _p("frame_id", "", "frame_id of published headers; empty = the camera's frame_id", read_only=True),
    # -- model and runtime --------------------------------------------------------------------------------------
    _p(
        "checkpoint",
        _RUNTIME.checkpoint,
        "checkpoint directory (safetensors); empty = the bundled demo model",
        read_only=True,
    ),
    _p("vision_tower", _RUNTIME.vision_tower, "InternViT folder; empty = from the checkpoint's config", read_only=True),
    _p(
        "audio_encoder",
        _RUNTIME.audio_encoder,
        "VITA audio-encoder folder; empty = from the checkpoint's config",
        read_only=True,
    ),
    _p(
        "backend",
        _RUNTIME.backend,
        "inference backend; auto tries TensorRT, onnxruntime CUDA, onnxruntime CPU, then torch, and logs which it got",
        read_only=True,
        choices=BACKENDS,
    ),
    _p(
        "engine_dir",
        _RUNTIME.engine_dir,
        "exported ONNX graphs / TensorRT engines (a folder with manifest.json, "
        "or a cache root); empty = the user cache",
        read_only=True,
    ),
    _p("ort_provider", _RUNTIME.ort_provider, "onnxruntime execution provider", read_only=True, choices=ORT_PROVIDERS),
    _p(
        "engine_precision",
        _RUNTIME.engine_precision,
        "engine precision; below fp32 only engines the agreement gate accepted",
        read_only=True,
        choices=ENGINE_PRECISIONS,
    ),
    _p("dtype", _RUNTIME.dtype, "model precision", read_only=True, choices=DTYPES),
    _p("device", _RUNTIME.device, "torch device, e.g. cpu, cuda, cuda:1", read_only=True),
    _p("system_prompt", _RUNTIME.system_prompt, "system prompt preset", read_only=True, choices=SYSTEM_PROMPTS),
    _p(
        "alignment",
        _RUNTIME.alignment,
        "trained: answer tokens pair with the next user rows (watching while "
        "speaking); pad: generate the whole answer at once",
        read_only=True,
        choices=ALIGNMENTS,
    ),
    _p(
        "window_segments",
        _RUNTIME.window_segments,
        "segments kept in the KV cache besides the system prompt",
        read_only=True,
        min_value=1,
        max_value=3600,
    ),
    _p(
        "max_answer_tokens",
        _RUNTIME.max_answer_tokens,
        "longest answer in tokens",
        read_only=True,
        min_value=1,
        max_value=2048,
    ),
    _p(
        "audio_questions",
        _RUNTIME.audio_questions,
        "answer spoken questions (reactive decision at audio rows)",
        read_only=True,
    ),
    _p(
        "frame_policy",
        _RUNTIME.frame_policy,
        "latest: newest frame of each second; official: first frame, as ViSpeak's 1 fps sampler",
        read_only=True,
        choices=FRAME_POLICIES,
    ),
    _p(
        "max_input_latency_s",
        _RUNTIME.max_input_latency_s,
        "a second closes this long after its end even if an input is missing",
        read_only=True,
        min_value=0.0,
        max_value=10.0,
    ),
    _p(
        "segment_queue_size",
        _RUNTIME.segment_queue_size,
        "seconds waiting for the model; the oldest is dropped beyond this",
        read_only=True,
        min_value=1,
        max_value=1000,
    ),
    _p(
        "trigger_threshold",
        DEFAULT_THRESHOLD,
        "speak when the last three informative probabilities sum above this",
        tunable=True,
        min_value=0.0,
        max_value=3.0,
    ),
    _p(
        "trigger_release",
        _RUNTIME.trigger_release,
        "< 1: after an answer, no proactive trigger until a probability falls below this",
        read_only=True,
        min_value=0.0,
        max_value=1.0,
    ),
    _p("behaviours", list(BEHAVIOURS), "behaviours whose events are published on ~/events", tunable=True),
    # -- speech -------------------------------------------------------------------------------------------------
    _p(
        "speech_sink",
        "topic",
        "topic: sentences on ~/speech (std_msgs/String); tts_action: goals to an "
        "audio_common TTS action server (rclpy only; falls back to the topic)",
        read_only=True,
        choices=("topic", "tts_action"),
    ),
    _p("tts_action_name", "say", "TTS action server name (audio_common_msgs/action/TTS)", read_only=True),
    _p("tts_language", "en", "language of TTS goals", tunable=True),
    _p("tts_volume", 1.0, "volume of TTS goals", tunable=True, min_value=0.0, max_value=1.0),
    _p("tts_rate", 1.0, "speaking rate of TTS goals", tunable=True, min_value=0.1, max_value=4.0),
    _p(
        "mute_audio_while_speaking",
        True,
        "replace microphone audio by silence while our own speech plays "
        "(estimated from the text, or from a Bool on speaking)",
        tunable=True,
    ),
    _p(
        "speech_chars_per_s",
        15.0,
        "speaking speed used to estimate how long a sentence plays",
        tunable=True,
        min_value=1.0,
        max_value=100.0,
    ),
    # -- safety -------------------------------------------------------------------------------------------------
    _p("stop_behaviours", ["anomaly"], "events that raise the advisory stop", tunable=True),
    _p(
        "stop_latch_timeout_s",
        0.0,
        "seconds after which a stop clears by itself; 0 = held until ~/clear_stop",
        tunable=True,
        min_value=0.0,
        max_value=86400.0,
    ),
    _p(
        "lock_rate_hz",
        10.0,
        "rate of the ~/stop_lock heartbeat (give twist_mux a lock timeout of a few periods)",
        read_only=True,
        min_value=1.0,
        max_value=100.0,
    ),
    _p(
        "stop_twist",
        "none",
        "while a stop is active also publish zero velocities on ~/stop_cmd_vel for a top-priority twist_mux input",
        read_only=True,
        choices=("none", "twist", "twist_stamped"),
    ),
    _p(
        "watchdog_timeout_s",
        2.0,
        "a model step longer than this counts as a hang: stop lock on, diagnostics ERROR",
        tunable=True,
        min_value=0.1,
        max_value=600.0,
    ),
    # -- diagnostics --------------------------------------------------------------------------------------------
    _p("diagnostics_period_s", 1.0, "period of /diagnostics", read_only=True, min_value=0.1, max_value=60.0),
)

BY_NAME: dict[str, NodeParameter] = {p.name: p for p in PARAMETERS}

# Parameters the node owns besides the table: use_sim_time (every adapter declares it).
ADAPTER_PARAMETERS = ("use_sim_time",)


def runtime_config(values: dict[str, Any]) -> RuntimeConfig:
    """The runtime part of the node's parameters as a RuntimeConfig (validated there)."""
    from vispeak_ros.runtime.config import from_mapping

    keys = set(RuntimeConfig.__dataclass_fields__)
    return from_mapping({k: v for k, v in values.items() if k in keys}, source="node parameters")
