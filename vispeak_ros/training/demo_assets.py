"""The bundled demo recording: one held-out session (wake up, thumbs up, point with a question, a raised palm while
the assistant answers, goodbye) as a rosbag2 mcap folder, 240x240 camera at 10 fps and int16 audio, plus its
ViSpeak-Bench style annotations. Square frames: the CLIP-style centre crop keeps the whole picture."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from vispeak_ros.training import world
from vispeak_ros.training.recordings import annotation_item, write_bag

DEMO_STEPS: tuple[str, ...] = ("wake_up", "thumbs_up", "point", "interrupt", "goodbye")
DEMO_SEED_INDEX = 3  # which held-out seed (world.split_seeds(..., split="heldout")) the demo session uses
DEMO_SIZE = (240, 240)
DEMO_FPS = 10.0
DEMO_DURATION_S = 60.0


def demo_stream() -> world.Stream:
    """The demo session (held-out split: seeds and backgrounds the demo model never trained on)."""
    seed = world.split_seeds(DEMO_SEED_INDEX + 1, 1234, "heldout")[DEMO_SEED_INDEX]
    return world.generate_session(seed, DEMO_STEPS, "heldout", size=DEMO_SIZE, fps=DEMO_FPS, duration_s=DEMO_DURATION_S)


def write_demo_assets(data_dir: Path) -> tuple[Path, Path]:
    """Write `demo_recording/` (rosbag2 mcap folder) and `demo_recording.annotations.json` into `data_dir`."""
    stream = demo_stream()
    bag = data_dir / "demo_recording"
    if bag.exists():
        shutil.rmtree(bag)
    write_bag(stream, bag, storage="mcap", image="compressed", audio_format="int16", jpeg_quality=70)
    notes = data_dir / "demo_recording.annotations.json"
    doc = {
        "recording": bag.name,
        "stream": stream.name,
        "duration_s": stream.duration_s,
        "steps": list(stream.steps),
        "user_texts": [{"time": t.time, "text": t.text} for t in stream.turns if t.role == "user"],
        "events": [
            {
                "behaviour": e.behaviour.name,
                "scenario": e.scenario,
                "answer": e.answer,
                "timespan": list(e.timespan),
                "label_window": list(e.label_window),
            }
            for e in stream.events
        ],
        "items": [annotation_item(stream, e, bag.name) for e in stream.events],
    }
    notes.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return bag, notes
