"""The seven ViSpeak-Bench subtasks: names, annotation files, how the official harness drives each, how it is judged.

Facts from the official harness (HumanMLLM/ViSpeak, `ViSpeak_bench.py`) and scorer (HumanMLLM/ViSpeak-Bench,
`src/count.py`), summarised in `shared/spec/vispeak.md`:
- Anomaly Warning, Humor Reaction, Visual Wake-Up: proactive from the first frame;
- Visual Interruption: the user's question at its time, the previous answer pre-filled in the agent stream after it,
  decoding from the segment after the question;
- Visual Termination, Gesture Understanding: the previous answer pre-filled after the question, decoding from the
  first segment after the pre-filled answer;
- Visual Reference: offline `video` system prompt, the multiple-choice question as the last segment, answer when the
  argmax is not pad (not proactive); scored by the option letter, not timed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Driving = Literal["proactive", "interrupt", "prefilled", "question"]


@dataclass(frozen=True)
class Task:
    name: str  # the official name, also the predictions file stem: "<name>_output.json"
    code: str  # the scorer's short code
    files: tuple[str, ...]  # annotation file names, first match wins
    driving: Driving
    timed: bool  # time accuracy + judged text (False: multiple choice)

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")

    @property
    def system_prompt(self) -> str:
        return "video" if self.driving == "question" else "vispeak"

    @property
    def proactive(self) -> bool:
        return self.driving != "question"


# The official harness's order (its metainfo table).
TASKS: tuple[Task, ...] = (
    Task("Anomaly_Warning", "aw", ("Anomaly_Warning.json",), "proactive", True),
    # the harness names Gesture_Understanding_v3.json; the released benchmark ships Gesture_Understanding.json
    Task(
        "Gesture_Understanding",
        "gu",
        ("Gesture_Understanding.json", "Gesture_Understanding_v3.json"),
        "prefilled",
        True,
    ),
    Task("Humor_Reaction", "hr", ("Humor_Reaction.json",), "proactive", True),
    Task("Visual_Interruption", "vi", ("Visual_Interruption.json",), "interrupt", True),
    Task("Visual_Reference", "vr", ("Visual_Reference.json",), "question", False),
    Task("Visual_Termination", "vt", ("Visual_Termination.json",), "prefilled", True),
    Task("Visual_Wake-Up", "vw", ("Visual_Wake-Up.json",), "proactive", True),
)
BY_NAME = {t.name: t for t in TASKS}
BY_CODE = {t.code: t for t in TASKS}


def get_task(key: str) -> Task:
    """A task by official name ("Visual_Wake-Up"), code ("vw") or label ("Visual Wake-Up"), case-insensitive."""
    wanted = key.strip().lower().replace(" ", "_")
    for task in TASKS:
        if wanted in (task.name.lower(), task.code):
            return task
    known = ", ".join(f"{t.name} ({t.code})" for t in TASKS)
    raise ValueError(f"unknown subtask {key!r}; known: {known}")


def select(keys: str | None) -> tuple[Task, ...]:
    """Tasks from a comma-separated list ("vw,vt"), or all of them for None / "all"."""
    if keys is None or keys.strip().lower() in ("", "all"):
        return TASKS
    chosen = [get_task(k) for k in keys.split(",") if k.strip()]
    return tuple(t for t in TASKS if t in chosen)
