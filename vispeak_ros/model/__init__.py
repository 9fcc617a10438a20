"""The ViSpeak model layer: torch + transformers, loaded from a published checkpoint (safetensors only).

Importing this package imports torch and transformers; `vispeak_ros` and `vispeak_ros.core` do not.
"""

from vispeak_ros.model.config import AudioConfig, FbankConfig, VisionConfig, ViSpeakConfig
from vispeak_ros.model.errors import CheckpointError
from vispeak_ros.model.loader import CheckpointInfo, load_checkpoint
from vispeak_ros.model.prompts import SYSTEM_PROMPTS, StreamTemplate
from vispeak_ros.model.session import SegmentResult, StreamingSession
from vispeak_ros.model.tokenizer import SpecialTokens, ViSpeakTokenizer, load_tokenizer
from vispeak_ros.model.vispeak import AUDIO_TOKEN_INDEX, IMAGE_TOKEN_INDEX, ViSpeakForCausalLM

__all__ = [
    "AUDIO_TOKEN_INDEX",
    "IMAGE_TOKEN_INDEX",
    "SYSTEM_PROMPTS",
    "AudioConfig",
    "CheckpointError",
    "CheckpointInfo",
    "FbankConfig",
    "SegmentResult",
    "SpecialTokens",
    "StreamTemplate",
    "StreamingSession",
    "ViSpeakConfig",
    "ViSpeakForCausalLM",
    "ViSpeakTokenizer",
    "VisionConfig",
    "load_checkpoint",
    "load_tokenizer",
]
