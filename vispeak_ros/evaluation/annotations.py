"""ViSpeak-Bench annotation files, read and validated into one `Item` per clip.

The files are JSON lists, one per subtask (the layout of HumanMLLM/ViSpeak-Bench `data/annotations/`). Fields used:
`video` (the key of predictions), optional `video_start_time` / `video_end_time` (seconds of the video file),
`conversations` (turns `from` human/gpt with `value`, `time`, and on the last answer the ground-truth `timespan`
[t1, t2]), and for Visual Reference `questions`, `ans` (a letter) and `ans_full` (the option text). Anything missing
or of the wrong type is refused with one line naming the file, the item and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vispeak_ros.evaluation.tasks import TASKS, Task


class AnnotationError(ValueError):
    """An annotation file is missing or malformed; the message names the file, the item and the field."""


@dataclass(frozen=True)
class Item:
    """One benchmark clip, with what the harness feeds and what the scorer compares."""

    task: Task
    index: int  # position in the annotation file (the order predictions are written in)
    video: str
    start_time: float | None
    end_time: float | None
    texts: tuple[tuple[float, str], ...]  # user texts (time, text); Visual Reference: its question, fed last
    prefill: str | None  # the previous answer pre-filled in the agent stream (VI, VT, GU)
    timespan: tuple[float, float] | None  # ground-truth window of the answer (timed subtasks)
    reference: str  # the ground-truth answer text (timed) or the correct option letter (VR)
    option_text: str = ""  # VR: the correct option's text
    question: str = ""  # VR: the multiple-choice question
    gesture: str = ""  # GU: the gesture's name (the judge's ground truth)
    dialogue: tuple[tuple[str, str], ...] = ()  # (speaker, text) of the turns before the answer (GU judge context)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def find_file(folder: str | Path, task: Task) -> Path:
    """The task's annotation file in `folder` (or in `folder/annotations/`)."""
    folder = Path(folder)
    for base in (folder, folder / "annotations"):
        for name in task.files:
            if (base / name).is_file():
                return base / name
    raise AnnotationError(f"{folder}: no annotation file for {task.name} (looked for {', '.join(task.files)})")


def _number(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AnnotationError(f"{where}: '{name}' must be a number, got {value!r}")
    return float(value)


def _optional_number(raw: dict, key: str, where: str) -> float | None:
    return None if raw.get(key) is None else _number(raw[key], where, key)


def _text(raw: dict, key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        raise AnnotationError(f"{where}: '{key}' must be a string, got {value!r}")
    return value


def _turns(raw: dict, where: str) -> list[dict]:
    turns = raw.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise AnnotationError(f"{where}: 'conversations' must be a non-empty list")
    for k, turn in enumerate(turns):
        at = f"{where} turn {k}"
        if not isinstance(turn, dict) or turn.get("from") not in ("human", "gpt"):
            raise AnnotationError(f"{at}: each turn needs 'from' human or gpt")
        _text(turn, "value", at)
        _number(turn.get("time"), at, "time")
    return turns


def _timespan(turn: dict, where: str) -> tuple[float, float]:
    span = turn.get("timespan")
    if not isinstance(span, (list, tuple)) or len(span) != 2:
        raise AnnotationError(f"{where}: the last turn needs a 'timespan' [t1, t2], got {span!r}")
    t1, t2 = (_number(v, where, "timespan") for v in span)
    if t2 < t1:
        raise AnnotationError(f"{where}: timespan [{t1}, {t2}] ends before it starts")
    return t1, t2


def parse_item(task: Task, index: int, raw: Any, source: str) -> Item:
    where = f"{source}: item {index}"
    if not isinstance(raw, dict):
        raise AnnotationError(f"{where}: expected an object, got {type(raw).__name__}")
    video = _text(raw, "video", where)
    where = f"{where} ({video})"
    start, end = _optional_number(raw, "video_start_time", where), _optional_number(raw, "video_end_time", where)
    if not task.timed:
        question = _text(raw, "questions", where)
        letter = _text(raw, "ans", where).strip()
        if letter not in ("A", "B", "C", "D", "E"):
            raise AnnotationError(f"{where}: 'ans' must be one of A-E, got {letter!r}")
        # the harness feeds the question after every frame (its timestamp 100000 sorts it last)
        return Item(
            task,
            index,
            video,
            start,
            end,
            ((100000.0, question),),
            None,
            None,
            letter,
            option_text=_text(raw, "ans_full", where),
            question=question,
            raw=raw,
        )
    turns = _turns(raw, where)
    if turns[-1]["from"] != "gpt":
        raise AnnotationError(f"{where}: the last turn must be the answer ('from': 'gpt')")
    span = _timespan(turns[-1], where)
    texts = tuple((float(t["time"]), t["value"]) for t in turns if t["from"] == "human")
    prefill = None
    if task.driving in ("interrupt", "prefilled"):
        if len(turns) < 3 or turns[0]["from"] != "human" or turns[1]["from"] != "gpt":
            raise AnnotationError(f"{where}: {task.label} needs turns human, gpt (the previous answer), gpt")
        prefill = turns[1]["value"]
    gesture = raw.get("gesture", "") if isinstance(raw.get("gesture", ""), str) else ""
    dialogue = tuple((t["from"], t["value"]) for t in turns[:-1])
    return Item(
        task,
        index,
        video,
        start,
        end,
        texts,
        prefill,
        span,
        turns[-1]["value"],
        gesture=gesture,
        dialogue=dialogue,
        raw=raw,
    )


def load_items(path: str | Path, task: Task) -> list[Item]:
    """All items of one annotation file; duplicate videos are refused (predictions are keyed by video)."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"annotation file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AnnotationError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a JSON list of items, got {type(data).__name__}")
    items = [parse_item(task, i, raw, str(path)) for i, raw in enumerate(data)]
    seen: dict[str, int] = {}
    for item in items:
        if item.video in seen:
            raise AnnotationError(
                f"{path}: video {item.video!r} appears twice (items {seen[item.video]} and "
                f"{item.index}); predictions are keyed by video"
            )
        seen[item.video] = item.index
    return items


def load_task(folder: str | Path, task: Task) -> list[Item]:
    return load_items(find_file(folder, task), task)


def load_all(folder: str | Path, tasks: tuple[Task, ...] = TASKS) -> dict[str, list[Item]]:
    """Items of every task in `tasks` whose file is in `folder`; task name -> items (tasks without a file left out
    only when `tasks` is the full default set; a task asked for explicitly must have its file)."""
    out: dict[str, list[Item]] = {}
    for task in tasks:
        try:
            path = find_file(folder, task)
        except AnnotationError:
            if tasks is TASKS:
                continue
            raise
        out[task.name] = load_items(path, task)
    if not out:
        raise AnnotationError(f"{folder}: no ViSpeak-Bench annotation files found")
    return out
