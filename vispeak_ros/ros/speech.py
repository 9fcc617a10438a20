"""Where the assistant's sentences go, and when the robot is talking (so the microphone can be muted).

Sinks: `topic` publishes each sentence on `~/speech` (std_msgs/String) for a text-only TTS; `tts_action` also
sends each sentence as a goal to an audio_common TTS action server (`say`, audio_common_msgs/action/TTS) and
cancels the running goals when the answer is cut. Either way `~/speech_cancel` (std_msgs/Empty) is published on a
cut, for TTS nodes that listen for it.

Speaking state, for `mute_audio_while_speaking`: once anyone publishes on the `speaking` std_msgs/Bool topic (a
TTS node that knows when playback starts and ends), its last value decides; until then the node estimates the
end of playback from the text length (`speech_chars_per_s`), each sentence starting when the previous one ends.
"""

from __future__ import annotations

NS_PER_S = 1_000_000_000


class SpeakingEstimate:
    """Is our own speech audible now? From the `speaking` topic once it was heard, else from the text estimate."""

    def __init__(self, chars_per_s: float = 15.0) -> None:
        self.chars_per_s = chars_per_s
        self._until_ns = 0
        self._reported: bool | None = None  # last value on the `speaking` topic

    def said(self, text: str, now_ns: int) -> None:
        """A sentence went to the speaker now; it plays after the ones before it."""
        start = max(now_ns, self._until_ns)
        self._until_ns = start + round(len(text) / self.chars_per_s * NS_PER_S)

    def cancelled(self) -> None:
        self._until_ns = 0

    def report(self, speaking: bool) -> None:
        """A Bool from the `speaking` topic."""
        self._reported = bool(speaking)

    def speaking(self, now_ns: int) -> bool:
        if self._reported is not None:
            return self._reported
        return now_ns < self._until_ns
