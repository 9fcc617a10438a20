"""Dataset entries (the official dataset-config keys) -> items -> training examples with decoded media.

An entry is a mapping: `chat_path` (a JSON list of items), `data_ratio` (the first fraction is used), `streaming`,
`audio_proactive`, `no_visual_proactive`, and `video_folder_path` / `image_folder_path` / `audio_folder_path`
joined in front of the items' media paths. Relative paths are read from the folder of the file that lists them.
Examples are built lazily (in DataLoader workers on a cluster): media decoded, rows built, pixels and fbanks ready
for the frozen encoders, which run in the training step.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from vispeak_ros.model.config import AudioConfig, VisionConfig
from vispeak_ros.model.processors import fbank
from vispeak_ros.model.tokenizer import ViSpeakTokenizer
from vispeak_ros.training.recipe.formats import FormatError, Rows, build_rows, check_runs, data_type
from vispeak_ros.training.recipe.media import MediaError, MediaOptions, load_media, pixels

ENTRY_KEYS = {
    "chat_path",
    "data_ratio",
    "streaming",
    "audio_proactive",
    "no_visual_proactive",
    "gesture",
    "video_folder_path",
    "image_folder_path",
    "audio_folder_path",
}


class DataError(ValueError):
    """A dataset entry or item cannot be used; the message names the file and the item."""


@dataclass
class Item:
    raw: dict[str, Any]
    kind: str
    no_visual_proactive: bool
    name: str


def read_entries(path: str | Path) -> list[dict[str, Any]]:
    """A YAML/JSON file holding a list of entries (or a mapping with `data:`); paths resolved against its folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise DataError(f"--data {path}: cannot read: {error}") from None
    if isinstance(raw, dict) and "data" in raw:
        raw = raw["data"]
    if not isinstance(raw, list):
        raise DataError(f"--data {path}: expected a list of dataset entries")
    return [resolve_entry(e, path.parent, f"{path}[{i}]") for i, e in enumerate(raw)]


def resolve_entry(entry: Any, base: Path, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict) or "chat_path" not in entry:
        raise DataError(f"{where}: a dataset entry is a mapping with 'chat_path'")
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
        raise DataError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(ENTRY_KEYS))})")
    out = dict(entry)
    for key in ("chat_path", "video_folder_path", "image_folder_path", "audio_folder_path"):
        if out.get(key):
            out[key] = str(base / os.path.expanduser(str(out[key])))
    return out


def load_items(entries: list[dict[str, Any]]) -> list[Item]:
    """Every entry's items with media paths joined and the entry's data type, in file order."""
    items: list[Item] = []
    for entry in entries:
        path = Path(entry["chat_path"])
        try:
            kind = data_type(entry)
        except FormatError as error:
            raise DataError(str(error)) from None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise DataError(f"{path}: cannot read annotations: {error}") from None
        if not isinstance(raw, list):
            raise DataError(f"{path}: expected a JSON list of items")
        ratio = float(entry.get("data_ratio", 1.0))
        raw = raw[: int(len(raw) * ratio)]
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise DataError(f"{path}[{i}]: an item is a JSON object")
            item = dict(item)
            for key, folder in (("video", "video_folder_path"), ("image", "image_folder_path"),
                                ("audio", "audio_folder_path")):  # fmt: skip
                if key in item and entry.get(folder):
                    value = item[key]
                    joined = [os.path.join(entry[folder], v) for v in ([value] if isinstance(value, str) else value)]
                    item[key] = joined[0] if key == "video" else joined
            items.append(Item(item, kind, bool(entry.get("no_visual_proactive", False)), f"{path.name}[{i}]"))
    return items


@dataclass
class Example:
    """One training example: rows plus encoder inputs."""

    rows: Rows
    frames: torch.Tensor  # [N, 3, S, S] video frames
    tiles: list[torch.Tensor]  # per offline image [n, 3, S, S]
    fbank: torch.Tensor  # [M, F, 80] 1 s chunks in audio-run order
    fbank_lengths: torch.Tensor  # [M]


class RecipeDataset(torch.utils.data.Dataset):
    def __init__(
        self,
        items: list[Item],
        tokenizer: ViSpeakTokenizer,
        vision: VisionConfig,
        audio: AudioConfig,
        media: MediaOptions,
        tokens_per_frame: int = 64,
    ) -> None:
        self.items = items
        self.tokenizer = tokenizer
        self.vision = vision
        self.audio = audio
        self.media = media
        self.tokens_per_frame = tokens_per_frame

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Example:
        item = self.items[index]
        try:
            media = load_media(item.raw, item.kind, self.media, self.vision)
            rows = build_rows(
                item.raw,
                item.kind,
                media.layout(),
                self.tokenizer,
                no_visual_proactive=item.no_visual_proactive,
                tokens_per_frame=self.tokens_per_frame,
                name=item.name,
            )
            check_runs(rows)
        except (MediaError, FormatError) as error:
            raise DataError(f"{item.name}: {error}") from None
        frames, tiles = pixels(media, self.vision)
        chunks = {"video_audio": [c for per in media.video_audio for c in per],
                  "audio": [c for per in media.audio_files for c in per]}  # fmt: skip
        feats = [fbank(chunks[source][i], self.audio.fbank) for source, i in rows.audios]
        if feats:
            lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
            width = int(lengths.max())
            bank = torch.stack([torch.nn.functional.pad(f, (0, 0, 0, width - f.shape[0])) for f in feats])
        else:
            lengths = torch.zeros(0, dtype=torch.long)
            bank = torch.zeros(0, 0, self.audio.fbank.num_mel_bins)
        return Example(rows, frames, tiles, bank, lengths)


def truncate(example: Example, max_length: int) -> Example:
    """At most `max_length` rows (the official collator cuts at model_max_length); a cut inside a placeholder run
    moves back to the run's start, and media whose runs fell off are dropped."""
    sample = example.rows.sample
    if len(sample.user_ids) <= max_length:
        return example
    ids = sample.user_ids
    stop = max_length
    while stop > 0 and int(ids[stop]) < 0 and int(ids[stop - 1]) == int(ids[stop]):
        stop -= 1
    cut = type(sample)(
        name=sample.name,
        blocks=sample.blocks,
        block_ends=sample.block_ends,
        user_ids=ids[:stop],
        agent_ids=sample.agent_ids[:stop],
        lm_labels=sample.lm_labels[:stop].clone(),
        info_labels=sample.info_labels[:stop],
        answers=sample.answers,
    )
    cut.lm_labels[-1:] = -100  # its target row was cut off
    rows = Rows(cut, example.rows.data_type, example.rows.system)
    from vispeak_ros.model.vispeak import AUDIO_TOKEN_INDEX, IMAGE_TOKEN_INDEX

    def runs(token: int) -> int:
        flags = torch.cat([torch.zeros(1, dtype=torch.bool), cut.user_ids == token])
        return int((flags[1:] & ~flags[:-1]).sum())

    n_images, n_audio = runs(IMAGE_TOKEN_INDEX), runs(AUDIO_TOKEN_INDEX)
    rows.images = example.rows.images[:n_images]
    rows.audios = example.rows.audios[:n_audio]
    frames_kept = sum(1 for kind, _ in rows.images if kind == "frame")
    tiles_kept = sum(1 for kind, _ in rows.images if kind == "image")
    return Example(rows, example.frames[:frames_kept], example.tiles[:tiles_kept], example.fbank[:n_audio],
                   example.fbank_lengths[:n_audio])  # fmt: skip


def collate(examples: list[Example]) -> list[Example]:
    """Examples stay a list: their media differ in shape; the step pads the rows (right padding, causal)."""
    return list(examples)


def summary(items: list[Item]) -> Mapping[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.kind] = counts.get(item.kind, 0) + 1
    return counts
