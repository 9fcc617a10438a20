"""Predictions in the official format, and the per-process records that make `run` resumable.

Official format (what the official harness writes and its scorer reads): one file per subtask, `<Task>_output.json`,
a JSON list in annotation order of one-key objects `{"<video as in the annotations>": [answer_text, response_time_s]}`.
A clip the model never answered has `["", null]` here by default; with the official quirks the released harness's
values are written instead (`["", <the time its loop starts from>]`, and answer text cut where it cuts it).

While running, every process appends one JSON line per finished clip to `<Task>_output.rank<R>.jsonl` (flushed and
fsynced: a killed run loses at most the clip in progress). A later run, with any number of processes, reads every
such file and the final file and skips what is done; the final file is (re)written, atomically, once every clip of
the subtask has a record.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


class PredictionError(ValueError):
    """A predictions file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Prediction:
    video: str
    text: str
    time: float | None  # None: no answer


@dataclass(frozen=True)
class Record:
    """One clip's result, as the harness saw it (both conventions, so either can be written without rerunning)."""

    video: str
    text: str  # the answer text (empty when none)
    time: float | None  # response time in seconds of the video; None when the model never answered
    official_text: str  # the text the released harness would report (cut after 2048 agent positions)
    official_time: float | None  # the time it would report (its loop's starting timestamp when no answer came)
    frames: int = 0
    wall_s: float = 0.0

    def entry(self, official_quirks: bool) -> dict[str, list]:
        if official_quirks:
            return {self.video: [self.official_text, self.official_time]}
        return {self.video: [self.text, self.time]}


def output_path(folder: str | Path, task_name: str) -> Path:
    return Path(folder) / f"{task_name}_output.json"


def shard_path(folder: str | Path, task_name: str, rank: int) -> Path:
    return Path(folder) / f"{task_name}_output.rank{rank}.jsonl"


def read_predictions(path: str | Path) -> list[Prediction]:
    """Entries of an official predictions file, in file order (duplicates kept: the caller decides)."""
    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"predictions file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PredictionError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(data, list):
        raise PredictionError(f"{path}: expected a JSON list of {{video: [text, time]}} objects")
    out = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or len(entry) != 1:
            raise PredictionError(f"{path}: entry {i} must be an object with exactly one key (the video)")
        ((video, value),) = entry.items()
        if not isinstance(value, list) or len(value) < 2:
            raise PredictionError(f"{path}: entry {i} ({video}) must hold [answer_text, response_time_s]")
        text, time = value[0], value[1]
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise PredictionError(f"{path}: entry {i} ({video}): answer text must be a string, got {text!r}")
        if time is not None and (isinstance(time, bool) or not isinstance(time, (int, float)) or math.isnan(time)):
            raise PredictionError(f"{path}: entry {i} ({video}): response time must be a number or null, got {time!r}")
        out.append(Prediction(video, text, None if time is None else float(time)))
    return out


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_predictions(path: str | Path, records: Iterable[Record], official_quirks: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = [r.entry(official_quirks) for r in records]
    _write_atomic(path, json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
    return path


class ShardLog:
    """Appends records of one process; each line is flushed and synced to disk before the next clip starts."""

    def __init__(self, folder: str | Path, task_name: str, rank: int) -> None:
        self.path = shard_path(folder, task_name, rank)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, record: Record) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


def _record(data: Any) -> Record | None:
    try:
        return Record(**data)
    except TypeError:
        return None


def done_records(folder: str | Path, task_name: str) -> dict[str, Record]:
    """Every finished clip of a task in `folder`: from the per-process logs (a torn last line from a killed process is
    ignored) and from an existing final file (e.g. written by the official harness)."""
    folder = Path(folder)
    done: dict[str, Record] = {}
    final = output_path(folder, task_name)
    if final.is_file():
        for p in read_predictions(final):
            done[p.video] = Record(p.video, p.text, p.time, p.text, p.time)
    for log in sorted(folder.glob(f"{task_name}_output.rank*.jsonl")):
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                record = _record(json.loads(line))
            except json.JSONDecodeError:
                continue
            if record is not None:
                done[record.video] = record
    return done


def merge(folder: str | Path, task_name: str, videos: list[str], official_quirks: bool = False) -> Path | None:
    """Write `<Task>_output.json` in annotation order once every video has a record; None while some are missing."""
    done = done_records(folder, task_name)
    if any(v not in done for v in videos):
        return None
    return write_predictions(output_path(folder, task_name), (done[v] for v in videos), official_quirks)
