"""System prompts and the streaming template (no chat roles).

The prompt strings are part of the trained distribution: verbatim from the official data utilities. The streaming
user stream is: SYSTEM_PROMPT + `>Note`, then by time: a frame = image placeholders (64) + `>Note`; a 1 s audio
chunk = audio placeholders (12) + `>Note`; a user text = the text + `>Note` (text and seg token are tokenized
apart, as the official tokenizer helper splits at `>Note`). `vispeak` is the prompt for the seven proactive
behaviours; `online` for streaming question answering (the official data uses it when the stream holds user text).
"""

from __future__ import annotations

from collections.abc import Sequence

from vispeak_ros.model.tokenizer import ViSpeakTokenizer
from vispeak_ros.model.vispeak import AUDIO_TOKEN_INDEX, IMAGE_TOKEN_INDEX

_OFFLINE = (
    "You are an AI robot and now processing offline data. You should first read all input information and then "
    "answer questions. "
)
SYSTEM_PROMPTS: dict[str, str] = {
    "image": _OFFLINE + "Please note that you are seeing the image, not the video.",
    "video": _OFFLINE + "Please note that you are seeing the video, not the image.",
    "audio": _OFFLINE + "Please note that you are listening some audios.",
    "text": _OFFLINE + "Please note that you are reading texts.",
    "online": (
        "You are an AI robot and now processing online videos. Users will ask any questions at any time and you "
        "should first determine when to answer the questions and then answer the questions based on what you have "
        "seen."
    ),
    "vispeak": (
        "You are an AI robot and now processing online videos. You should be aware of anomaly events, fun things, "
        "and users actions and gestures to provide in-time interaction with users and necessary assistance "
        "effectively."
    ),
}

IMAGE_TOKENS_PER_FRAME = 64
AUDIO_TOKENS_PER_CHUNK = 12


class StreamTemplate:
    """Builds user-stream id segments, each ending with the seg token id."""

    def __init__(self, tokenizer: ViSpeakTokenizer, tokens_per_frame: int = IMAGE_TOKENS_PER_FRAME) -> None:
        self.tokenizer = tokenizer
        self.seg = tokenizer.special_tokens().seg
        self.tokens_per_frame = tokens_per_frame

    def system(self, kind: str = "vispeak") -> list[int]:
        if kind not in SYSTEM_PROMPTS:
            raise ValueError(f"system prompt {kind!r} is not one of {', '.join(SYSTEM_PROMPTS)}")
        return [*self.tokenizer.encode(SYSTEM_PROMPTS[kind]), self.seg]

    def frame(self) -> list[int]:
        return [IMAGE_TOKEN_INDEX] * self.tokens_per_frame + [self.seg]

    def audio(self, tokens: int = AUDIO_TOKENS_PER_CHUNK) -> list[int]:
        return [AUDIO_TOKEN_INDEX] * tokens + [self.seg]

    def text(self, text: str) -> list[int]:
        return [*self.tokenizer.encode(text), self.seg]

    def second(self, texts: Sequence[str] = (), audio: bool = True) -> list[list[int]]:
        """One 1 s segment in the shared order (training and runtime alike): the frame block, the audio block when
        the second has audio, then one block per user text that arrived in that second."""
        blocks = [self.frame()]
        if audio:
            blocks.append(self.audio())
        blocks.extend(self.text(t) for t in texts)
        return blocks
