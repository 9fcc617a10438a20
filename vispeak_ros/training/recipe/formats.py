"""Official ViSpeak annotation items -> rows of the two-stream template (user and agent ids, LM and informative
labels).

The item layouts are the official ones (ViSpeak data utilities and ViSpeak-Instruct / ViSpeak-Bench files): a dict
with `conversations` (`from` human|gpt, `value`, and in streaming data `time`, plus `timespan` on proactive answers),
media keys `video` / `image` / `audio`, and the flags `proactive` (streaming) and `use_audio` (audio-proactive). The
data type comes from the dataset entry, as in the official dataset config: `streaming: true` -> streaming,
`audio_proactive: true` -> audio-proactive (with `no_visual_proactive` for Visual Reference), else offline.

Rows use the demo trainer's conventions (`vispeak_ros.training.data`): `Sample`/`Block`, `IGNORE`, label at row p =
agent token of row p+1, informative label at a frame's last visual row (the row before its seg token). Placement
(spec, Training): an answer at time t starts at the first row after the seg token of the last eligible segment at or
before t (the system prompt's when none is): text segments for questions (☜), frame segments for proactive answers
(☟; in streaming data only frames after the user's question), audio segments for spoken questions (☞). An answer
that runs past the stream gets pad user rows. Informative labels (proactive data): 0 at every frame, 1 for frames
whose time lies in [midpoint, end] of a proactive answer's timespan.

Quirks of the released code reproduced knowingly (each checked in its data utilities):
- streaming data uses the `online` system prompt whenever the item has a user turn, `vispeak` otherwise, proactive
  or not; audio-proactive data always `vispeak`;
- in proactive streaming data a proactive answer earlier than the first frame after the question starts after the
  system prompt (its anchor list starts with the system prompt);
- offline answers always start with ☜ (the check for an audio question reads the rewritten turn, which ends with the
  seg token, so ☞ never fires there);
- video audio chunks of a frame are ordered 0.1 s, 0.2 s, ... after the frame; a user text at the frame's exact time
  comes after the frame (stable sort).
Deliberate difference: when an answer starts while an earlier one is still being spoken, the earlier one is cut
there (its remaining rows go silent); the released code overwrites only the overlap and leaves the earlier answer's
tail after the new one. A proactive answer without a `timespan` gets no positive informative labels (the released
code fails on such an item and swaps in a random other one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from vispeak_ros.model.prompts import StreamTemplate
from vispeak_ros.model.tokenizer import (
    AUDIO_ANSWER_MARKER,
    PROACTIVE_MARKER,
    TEXT_ANSWER_MARKER,
    ViSpeakTokenizer,
)
from vispeak_ros.model.vispeak import AUDIO_TOKEN_INDEX, IMAGE_TOKEN_INDEX
from vispeak_ros.training.data import IGNORE, Answer, Block, Sample

DATA_TYPES = ("offline", "streaming", "audio_proactive")
IMAGE, VIDEO, AUDIO = "<image>", "<video>", "<audio>"
AUDIO_CHUNK_STEP = 0.1  # official: the i-th audio chunk after a frame sorts at frame time + (i + 1) * 0.1


class FormatError(ValueError):
    """An annotation item does not fit its data type; the message names the item and the field."""


@dataclass(frozen=True)
class Layout:
    """What an item's media decoded to: counts and times only (the tensors live in `media.Media`)."""

    frame_times: tuple[float, ...] = ()  # sampled video frames, seconds of the video
    audio_per_frame: tuple[int, ...] = ()  # 1 s chunks of the video's audio that follow each frame
    image_tiles: tuple[int, ...] = ()  # tiles of each offline image (dynamic tiling; 1 without)
    audio_chunks: tuple[int, ...] = ()  # 1 s chunks of each offline audio file


@dataclass
class Rows:
    """One item as training rows, plus the order in which media fill the placeholder runs."""

    sample: Sample
    data_type: str
    system: str
    images: list[tuple[str, int]] = field(default_factory=list)  # ("frame", k) | ("image", j), in stream order
    audios: list[tuple[str, int]] = field(default_factory=list)  # ("video_audio", c) | ("audio", c), in order


def data_type(entry: Mapping[str, Any]) -> str:
    """The official rule: `audio_proactive` wins over `streaming`; neither is offline. Files whose path names
    `interrupt` get a data type the released code never preprocesses: refused."""
    path = str(entry.get("chat_path", ""))
    if "interrupt" in path and not entry.get("audio_proactive", False):
        raise FormatError(
            f"{path}: the released data utilities give files named 'interrupt' a data type they never preprocess; "
            "set audio_proactive: true (as ViSpeak-Instruct's interruption file does) or rename it"
        )
    if entry.get("gesture", False) and not entry.get("audio_proactive", False):
        raise FormatError(f"{path}: 'gesture: true' gives a data type the released data utilities never preprocess")
    if entry.get("audio_proactive", False):
        return "audio_proactive"
    return "streaming" if entry.get("streaming", False) else "offline"


def _turns(item: Mapping[str, Any], where: str) -> list[Mapping[str, Any]]:
    turns = item.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise FormatError(f"{where}: 'conversations' must be a non-empty list")
    for i, turn in enumerate(turns):
        if (
            not isinstance(turn, Mapping)
            or turn.get("from") not in ("human", "gpt")
            or not isinstance(turn.get("value"), str)
        ):
            raise FormatError(f"{where}: conversations[{i}] needs 'from' human|gpt and a string 'value'")
    return turns


def _time(turn: Mapping[str, Any], where: str, i: int) -> float:
    value = turn.get("time")
    if not isinstance(value, (int, float)):
        raise FormatError(f"{where}: conversations[{i}] of streaming data needs a numeric 'time'")
    return float(value)


class _Builder:
    """User rows block by block; answers placed with the cut rule (see the module docstring)."""

    def __init__(self, tokenizer: ViSpeakTokenizer, tokens_per_frame: int) -> None:
        self.tokenizer = tokenizer
        self.template = StreamTemplate(tokenizer, tokens_per_frame)
        self.specials = tokenizer.special_tokens()
        self.blocks: list[Block] = []
        self.ends: list[int] = []
        self.user: list[int] = []
        self.agent: list[int] = []
        self.lm: list[int] = []
        self.owner: list[int] = []  # index of the answer spoken at each agent row, -1 for silence
        self.info: dict[int, float] = {}
        self.answers: list[Answer] = []
        self.images: list[tuple[str, int]] = []
        self.audios: list[tuple[str, int]] = []

    def block(self, kind: str, index: int, ids: Sequence[int], time: float = 0.0, text: str = "") -> int:
        """Append user rows (agent pad); returns the seg row."""
        self.user.extend(ids)
        pad = self.specials.pad
        self.agent.extend([pad] * len(ids))
        self.lm.extend([IGNORE] * len(ids))
        self.owner.extend([-1] * len(ids))
        self.blocks.append(Block(kind, index, tuple(ids), time, text))
        self.ends.append(len(self.user) - 1)
        return self.ends[-1]

    def answer_tokens(self, marker: str, text: str) -> list[int]:
        return [self.tokenizer.single_id(marker), *self.tokenizer.encode(text), self.specials.im_end]

    def _grow(self, rows: int) -> None:
        if rows <= len(self.user):
            return
        need = rows - len(self.user)
        pad = self.specials.pad
        self.user += [pad] * need
        self.agent += [pad] * need
        self.lm += [IGNORE] * need
        self.owner += [-1] * need

    def place(self, seg: int, block: int, marker: str, text: str, time: float) -> None:
        """Answer tokens on agent rows seg+1.., labels on rows seg..; an answer running there is cut."""
        tokens = self.answer_tokens(marker, text)
        n = len(self.answers)
        self._grow(seg + 1 + len(tokens))
        cut = self.owner[seg + 1]
        for j, token in enumerate(tokens):
            self.agent[seg + 1 + j] = token
            self.lm[seg + j] = token
            self.owner[seg + 1 + j] = n
        if cut >= 0:
            for row in range(seg + 1 + len(tokens), len(self.owner)):
                if self.owner[row] == cut:
                    self.agent[row] = self.specials.pad
                    self.lm[row - 1] = IGNORE
                    self.owner[row] = -1
        self.answers.append(Answer(block, marker, text, time, None))

    def append_answer(self, marker: str, text: str) -> None:
        """Offline: the answer on new rows after everything so far (user rows pad)."""
        seg = len(self.user) - 1
        self.place(seg, len(self.blocks) - 1, marker, text, 0.0)

    def finish(self, name: str, stream_rows: int | None = None) -> Sample:
        """Trim rows a cut answer left silent past the stream, then tensors."""
        keep = max(stream_rows if stream_rows is not None else len(self.user), 0)
        spoken = [r for r, o in enumerate(self.owner) if o >= 0]
        if spoken:
            keep = max(keep, spoken[-1] + 1)
        info = [float(IGNORE)] * keep
        for row, value in self.info.items():
            if row < keep:
                info[row] = value
        return Sample(
            name=name,
            blocks=self.blocks,
            block_ends=self.ends,
            user_ids=torch.tensor(self.user[:keep], dtype=torch.long),
            agent_ids=torch.tensor(self.agent[:keep], dtype=torch.long),
            lm_labels=torch.tensor(self.lm[:keep], dtype=torch.long),
            info_labels=torch.tensor(info, dtype=torch.float32),
            answers=self.answers,
        )


# ---- streaming and audio-proactive -------------------------------------------------------------------------------


def _timeline(layout: Layout, texts: list[tuple[float, str]], with_audio: bool) -> list[tuple[float, str, Any]]:
    """(time, kind, payload) in the official order: frames with their audio chunks, texts by time (stable sort)."""
    if len(layout.audio_per_frame) not in (0, len(layout.frame_times)):
        raise FormatError("layout: audio_per_frame must give one count per frame")
    entries: list[tuple[float, str, Any]] = []
    chunk = 0
    for k, t in enumerate(layout.frame_times):
        entries.append((t, "frame", k))
        if with_audio and layout.audio_per_frame:
            for i in range(layout.audio_per_frame[k]):
                entries.append((t + (i + 1) * AUDIO_CHUNK_STEP, "audio", chunk))
                chunk += 1
    entries += [(t, "text", text) for t, text in texts]
    entries.sort(key=lambda e: e[0])
    return entries


def _stream_rows(b: _Builder, system: str, entries: list[tuple[float, str, Any]]) -> dict[str, list[tuple[float, int]]]:
    """Build the user stream; returns (time, seg row) of each frame, audio and text segment."""
    b.block("system", -1, b.template.system(system))
    segs: dict[str, list[tuple[float, int]]] = {"frame": [], "audio": [], "text": []}
    for t, kind, payload in entries:
        if kind == "frame":
            seg = b.block("frame", payload, b.template.frame(), t)
            b.images.append(("frame", payload))
        elif kind == "audio":
            seg = b.block("audio", payload, b.template.audio(), t)
            b.audios.append(("video_audio", payload))
        else:
            seg = b.block("text", len(segs["text"]), b.template.text(payload), t, payload)
        segs[kind].append((t, seg))
    return segs


def _anchor(segs: list[tuple[float, int]], t: float, start: int = 0, after: float | None = None) -> int:
    """Index into [system] + segs of the last segment at or before t, scanning from `start` (the released code's
    loop); with `after`, first skip segments earlier than it (audio-proactive: not before the previous answer)."""
    i = start
    if after is not None:
        while i < len(segs) and segs[i][0] < after:
            i += 1
    while i < len(segs) and t >= segs[i][0]:
        i += 1
    return i


def _positives(b: _Builder, frames: list[tuple[float, int]], span: Any, after: float, where: str) -> None:
    if span is None:
        return
    if not (isinstance(span, (list, tuple)) and len(span) == 2 and all(isinstance(x, (int, float)) for x in span)):
        raise FormatError(f"{where}: 'timespan' must be [start, end] in seconds")
    begin = (float(span[0]) + float(span[1])) / 2
    for t, seg in frames:
        if t > after and begin <= t <= float(span[1]):
            b.info[seg - 1] = 1.0


def streaming_rows(item: Mapping[str, Any], layout: Layout, b: _Builder, where: str) -> tuple[str, int]:
    turns = _turns(item, where)
    proactive = bool(item.get("proactive", False))
    texts = [(_time(t, where, i), t["value"]) for i, t in enumerate(turns) if t["from"] == "human"]
    system = "online" if texts else "vispeak"
    segs = _stream_rows(b, system, _timeline(layout, texts, with_audio=True))
    stream_rows = len(b.user)
    system_seg = b.ends[0]
    if proactive:
        query = texts[0][0] if texts else -1.0
        anchors = [s for s in segs["frame"] if s[0] > query]
        marker = PROACTIVE_MARKER
    else:
        anchors = segs["text"]
        marker = TEXT_ANSWER_MARKER
    i = 0
    for n, turn in enumerate(turns):
        if turn["from"] != "gpt":
            continue
        t = _time(turn, where, n)
        i = _anchor(anchors, t, i)
        seg = system_seg if i == 0 else anchors[i - 1][1]
        b.place(seg, b.ends.index(seg), marker, turn["value"], t)
    if proactive:
        query = texts[0][0] if texts else -1.0
        for _, seg in segs["frame"]:
            b.info[seg - 1] = 0.0
        for n, turn in enumerate(turns):
            if turn["from"] == "gpt":
                _positives(b, segs["frame"], turn.get("timespan"), query, f"{where}: conversations[{n}]")
    return system, stream_rows


def audio_proactive_rows(
    item: Mapping[str, Any], layout: Layout, b: _Builder, where: str, no_visual_proactive: bool
) -> tuple[str, int]:
    turns = _turns(item, where)
    use_audio = bool(item.get("use_audio", False))
    texts = [] if use_audio else [(_time(t, where, i), t["value"]) for i, t in enumerate(turns) if t["from"] == "human"]
    segs = _stream_rows(b, "vispeak", _timeline(layout, texts, with_audio=use_audio))
    stream_rows = len(b.user)
    system_seg = b.ends[0]
    previous = -1.0
    visual_turns = []
    for n, turn in enumerate(turns):
        if turn["from"] != "gpt":
            continue
        t = _time(turn, where, n)
        spoken_to = n > 0 and turns[n - 1]["from"] == "human"  # an answer to the user's question
        if not spoken_to:
            anchors, marker = segs["frame"], PROACTIVE_MARKER
            visual_turns.append(n)
        elif use_audio:
            anchors, marker = segs["audio"], AUDIO_ANSWER_MARKER
        else:
            anchors, marker = segs["text"], TEXT_ANSWER_MARKER
        i = _anchor(anchors, t, 0, after=previous)
        previous = t
        seg = system_seg if i == 0 else anchors[i - 1][1]
        b.place(seg, b.ends.index(seg), marker, turn["value"], t)
    if not no_visual_proactive:
        for _, seg in segs["frame"]:
            b.info[seg - 1] = 0.0
        for n in visual_turns:
            _positives(b, segs["frame"], turns[n].get("timespan"), -float("inf"), f"{where}: conversations[{n}]")
    if use_audio:  # stay silent after every audio chunk nobody answers: pad labels at audio seg rows
        for _, seg in segs["audio"]:
            if seg < len(b.lm) and b.lm[seg] == IGNORE:
                b.lm[seg] = b.specials.pad
    return "vispeak", stream_rows


# ---- offline -----------------------------------------------------------------------------------------------------


def normalise_human(value: str) -> str:
    """The released rewriting of a human turn: newlines next to media tags dropped, trailing image/video tags moved
    to the front, blank lines collapsed."""
    if IMAGE in value or VIDEO in value or AUDIO in value:
        for tag in (IMAGE, VIDEO, AUDIO):
            value = value.replace(tag + "\n", tag).strip()
            value = value.replace("\n" + tag, tag).strip()
        for tag in (IMAGE, VIDEO):
            if value.endswith(tag):
                count = value.count(tag)
                value = (tag * count + value.replace(tag * count, "").strip()).strip()
    return value.replace("\n\n", "\n")


def offline_rows(item: Mapping[str, Any], layout: Layout, b: _Builder, where: str) -> tuple[str, int]:
    turns = _turns(item, where)
    kinds = "text"
    for turn in turns:
        value = turn["value"]
        if IMAGE in value:
            kinds = "image"
        if VIDEO in value:
            kinds = "video"
        if AUDIO in value and kinds == "text":
            kinds = "audio"
    b.block("system", -1, b.template.system(kinds))
    image_i = audio_i = video_seen = 0
    audio_chunk = 0
    per_frame = layout.audio_per_frame or tuple(0 for _ in layout.frame_times)
    for n, turn in enumerate(turns):
        if turn["from"] == "gpt":
            b.append_answer(TEXT_ANSWER_MARKER, turn["value"].replace("\n\n", "\n"))
            continue
        for chunk in re.split(r"(<audio>|<image>|<video>)", normalise_human(turn["value"])):
            if chunk == IMAGE:
                if image_i >= len(layout.image_tiles):
                    raise FormatError(f"{where}: conversations[{n}] has more <image> tags than the item has images")
                ids = [IMAGE_TOKEN_INDEX] * (b.template.tokens_per_frame * layout.image_tiles[image_i])
                b.block("image", image_i, [*ids, b.template.seg])
                b.images.append(("image", image_i))
                image_i += 1
            elif chunk == VIDEO:
                if video_seen or not layout.frame_times:
                    raise FormatError(f"{where}: conversations[{n}]: one <video> per item, and the item needs 'video'")
                video_seen = 1
                video_chunk = 0
                for k, t in enumerate(layout.frame_times):
                    b.block("frame", k, b.template.frame(), t)
                    b.images.append(("frame", k))
                    for _ in range(per_frame[k]):
                        b.block("audio", video_chunk, b.template.audio(), t)
                        b.audios.append(("video_audio", video_chunk))
                        video_chunk += 1
            elif chunk == AUDIO:
                if audio_i >= len(layout.audio_chunks):
                    raise FormatError(f"{where}: conversations[{n}] has more <audio> tags than the item has audios")
                for _ in range(layout.audio_chunks[audio_i]):
                    b.block("audio", audio_chunk, b.template.audio())
                    b.audios.append(("audio", audio_chunk))
                    audio_chunk += 1
                audio_i += 1
            elif chunk:
                b.block("text", n, b.template.text(chunk), text=chunk)
    return kinds, len(b.user)


def build_rows(
    item: Mapping[str, Any],
    kind: str,
    layout: Layout,
    tokenizer: ViSpeakTokenizer,
    *,
    no_visual_proactive: bool = False,
    tokens_per_frame: int = 64,
    name: str = "",
) -> Rows:
    """One annotation item of data type `kind` (see `data_type`) -> training rows."""
    where = name or "item"
    if kind not in DATA_TYPES:
        raise FormatError(f"{where}: data type {kind!r} is not one of {', '.join(DATA_TYPES)}")
    b = _Builder(tokenizer, tokens_per_frame)
    if kind == "offline":
        system, rows = offline_rows(item, layout, b, where)
    elif kind == "streaming":
        if not layout.frame_times:
            raise FormatError(f"{where}: streaming data needs video frames")
        system, rows = streaming_rows(item, layout, b, where)
    else:
        if not layout.frame_times:
            raise FormatError(f"{where}: audio-proactive data needs video frames")
        system, rows = audio_proactive_rows(item, layout, b, where, no_visual_proactive)
    return Rows(b.finish(where, rows), kind, system, b.images, b.audios)


def check_runs(rows: Rows) -> None:
    """Placeholder runs and the media order agree (one image run per image entry, one audio run per chunk)."""
    ids = rows.sample.user_ids
    for token, order, what in ((IMAGE_TOKEN_INDEX, rows.images, "image"), (AUDIO_TOKEN_INDEX, rows.audios, "audio")):
        flags = torch.cat([torch.zeros(1, dtype=torch.bool), ids == token, torch.zeros(1, dtype=torch.bool)])
        runs = int((flags[1:] & ~flags[:-1]).sum())
        if runs != len(order):
            raise FormatError(f"{rows.sample.name}: {runs} {what} runs but {len(order)} {what} entries")
