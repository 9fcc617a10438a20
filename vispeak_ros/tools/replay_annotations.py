"""Ground-truth windows for the timeline and the replay summary, from an annotations file.

Two layouts are read:

- the demo recording's file (`{"events": [{"behaviour", "timespan": [t1, t2], ...}]}`, as
  `vispeak_ros/data/demo_recording.annotations.json`);
- a ViSpeak-Bench subtask file (a JSON list of items, as `recordings.write_annotations` and the official benchmark
  write): the items whose `video` names this recording (file name with or without its suffix) give one window each,
  the timespan of their last answer, labelled with the subtask's behaviour.

Times are seconds from the start of the recording. A missing, unreadable or unmatched file is one clear error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# ViSpeak-Bench task types (and item keys that stand for them) -> our behaviour names
TASK_BEHAVIOURS = {
    "Visual Wake-Up": "WAKE_UP",
    "Visual Reference": "VISUAL_REFERENCE",
    "Visual Interruption": "INTERRUPTION",
    "Visual Termination": "TERMINATION",
    "Anomaly Warning": "ANOMALY",
    "Gesture Understanding": "GESTURE",
    "Humor Reaction": "HUMOR",
}


class AnnotationError(ValueError):
    """The annotations cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class TruthWindow:
    behaviour: str  # e.g. "WAKE_UP"
    t1: float
    t2: float  # an answer is timely in [max(0, t1), t2 + 2 s]


def _behaviour(item: dict) -> str:
    if "task_type" in item:
        return TASK_BEHAVIOURS.get(str(item["task_type"]), str(item["task_type"]).upper().replace(" ", "_"))
    if "gesture" in item:
        return "GESTURE"
    return "ANOMALY" if "n_frames" in item else "EVENT"


def _item_window(item: dict) -> TruthWindow | None:
    spans = [c["timespan"] for c in item.get("conversations", []) if c.get("from") == "gpt" and "timespan" in c]
    if spans:
        return TruthWindow(_behaviour(item), float(spans[-1][0]), float(spans[-1][1]))
    if "video_end_time" in item and item.get("proactive") is False:  # a question: answered right after it
        return TruthWindow(_behaviour(item), float(item["video_end_time"]), float(item["video_end_time"]))
    return None


def load_windows(path: str | Path, recording_name: str) -> list[TruthWindow]:
    """The ground-truth windows of `recording_name` in the annotations file `path`, in time order."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"annotations not found: {path}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AnnotationError(f"{path}: not a JSON annotations file ({error})") from None
    windows: list[TruthWindow] = []
    if isinstance(document, dict) and isinstance(document.get("events"), list):
        try:
            for event in document["events"]:
                t1, t2 = event["timespan"]
                windows.append(TruthWindow(str(event["behaviour"]).upper(), float(t1), float(t2)))
        except (KeyError, TypeError, ValueError) as error:
            raise AnnotationError(f"{path}: an event lacks behaviour or timespan [t1, t2] ({error!r})") from None
    elif isinstance(document, list):
        names = {recording_name, Path(recording_name).stem}
        videos = sorted({str(item.get("video", "")) for item in document if isinstance(item, dict)})
        for item in document:
            if not isinstance(item, dict) or not ({str(item.get("video", "")), Path(str(item.get("video", ""))).stem}
                                                  & names):  # fmt: skip
                continue
            try:
                window = _item_window(item)
            except (KeyError, TypeError, ValueError, IndexError) as error:
                raise AnnotationError(f"{path}: bad item for {item.get('video')}: {error!r}") from None
            if window is not None:
                windows.append(window)
        if not windows:
            shown = ", ".join(videos[:5]) + (" ..." if len(videos) > 5 else "")
            raise AnnotationError(f"{path}: no annotations for recording {recording_name!r} (videos: {shown})")
    else:
        raise AnnotationError(f"{path}: neither a ViSpeak-Bench item list nor a file with an 'events' list")
    return sorted(windows, key=lambda w: (w.t1, w.t2))
