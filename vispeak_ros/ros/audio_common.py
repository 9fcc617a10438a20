"""The two incompatible `audio_common_msgs` packages, as rosbags types for bags, CDR and our DDS adapter.

Two ROS 2 audio stacks publish a package named `audio_common_msgs` with different definitions:

- "ros_drivers" (ros-drivers/audio_common, `ros2` branch; audio_capture): `AudioData` (uint8[] data, mp3 or raw
  PCM), `AudioDataStamped` (header + AudioData audio) and `AudioInfo` (channels, sample_rate, sample_format,
  bitrate, coding_format).
- "mgonzs13" (mgonzs13/audio_common; used by whisper_ros and llama_ros): `AudioData` (one typed array per
  PortAudio format), `AudioInfo` (format, channels, rate, chunk), `Audio` (audio_data + info) and
  `AudioStamped` (header + Audio audio).

Both define `audio_common_msgs/msg/AudioData` and `AudioInfo`, so **one type store (or one ROS graph) can hold
only one flavour**: `typestore(flavour)` gives a fresh store per flavour. The .msg files under
`audio_common_msgs/<flavour>/` are the definitions; field order matters (CDR is positional).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

FLAVOURS: tuple[str, ...] = ("ros_drivers", "mgonzs13")
PACKAGE = "audio_common_msgs"


def _folder(flavour: str) -> Path:
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown audio_common flavour {flavour!r} (supported: {', '.join(FLAVOURS)})")
    return Path(str(resources.files("vispeak_ros") / "ros" / "audio_common_msgs" / flavour))


@cache
def message_definitions(flavour: str) -> dict[str, str]:
    """Map of ROS type name (e.g. 'audio_common_msgs/msg/AudioInfo') to the .msg text of one flavour."""
    folder = _folder(flavour)
    definitions = {f"{PACKAGE}/msg/{p.stem}": p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.msg"))}
    if not definitions:
        raise FileNotFoundError(f"no audio_common_msgs definitions for {flavour!r} in {folder}")
    return definitions


def register(typestore: Any, flavour: str) -> None:
    """Register one flavour's audio_common_msgs types into a rosbags Typestore.

    Registering the other flavour into the same store afterwards fails (rosbags refuses to redefine a type).
    """
    from rosbags.typesys import get_types_from_msg

    types: dict = {}
    for name, text in message_definitions(flavour).items():
        types.update(get_types_from_msg(text, name))
    typestore.register(types)


def typestore(flavour: str, distro: str = "humble") -> Any:
    """A fresh rosbags Typestore of `distro` with our messages and the `flavour` audio_common_msgs registered."""
    from vispeak_ros import interfaces

    store = interfaces.typestore(distro)
    register(store, flavour)
    return store
