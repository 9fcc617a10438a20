"""Bundled demo assets, found from any directory: the tiny trained checkpoint and a recorded demo session."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_PACKAGE = "vispeak_ros.data"


def _path(name: str) -> Path:
    return Path(str(resources.files(_PACKAGE).joinpath(name)))


def demo_checkpoint() -> Path:
    """The demo checkpoint folder (official layout; load with `vispeak_ros.model.loader.load_checkpoint`)."""
    return _path("demo_model")


def demo_recording() -> Path:
    """The demo session recording: a rosbag2 folder (metadata.yaml + one .mcap; camera 10 fps, int16 audio)."""
    return _path("demo_recording")


def demo_annotations() -> Path:
    """Ground truth of the demo recording (ViSpeak-Bench style annotation items)."""
    return _path("demo_recording.annotations.json")
