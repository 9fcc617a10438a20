"""Our message definitions (msg/*.msg), read at run time and registered into `rosbags` type stores.

The .msg files are the single source of truth: rosidl builds them on a robot; without ROS they are parsed
here into rosbags types (for bags and CDR) and, from those, into Cyclone DDS types. Nothing is hand-copied.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

PACKAGE = "vispeak_ros"


def _definition_dir() -> Path:
    """Installed wheels carry the files in vispeak_ros/interfaces/; a source checkout reads msg/ directly."""
    installed = resources.files(PACKAGE) / "interfaces"
    if installed.is_dir() and any(p.name.endswith(".msg") for p in installed.iterdir()):
        return Path(str(installed))
    source = Path(__file__).resolve().parent.parent / "msg"
    if source.is_dir():
        return source
    raise FileNotFoundError(f"vispeak_ros message definitions not found in {installed} nor in {source}")


@cache
def message_definitions() -> dict[str, str]:
    """Map of ROS type name (e.g. 'vispeak_ros/msg/Feedback') to the .msg text."""
    folder = _definition_dir()
    return {f"{PACKAGE}/msg/{p.stem}": p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.msg"))}


def register(typestore) -> None:
    """Register our message types into a rosbags Typestore (idempotent)."""
    from rosbags.typesys import get_types_from_msg

    types: dict = {}
    for name, text in message_definitions().items():
        types.update(get_types_from_msg(text, name))
    typestore.register(types)


def typestore(distro: str = "humble"):
    """A fresh rosbags Typestore of the given ROS 2 distro with our messages registered."""
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(getattr(Stores, f"ROS2_{distro.upper()}"))
    register(store)
    return store
