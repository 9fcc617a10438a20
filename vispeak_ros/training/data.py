"""Synthetic streams -> training samples in the official streaming layout, with cached frozen-encoder features.

A stream becomes blocks in the shared order (`StreamTemplate.system` then, per 1 s segment, `StreamTemplate.second`:
frame block, audio block, one block per user text of that second). Answers go into the agent stream (pad elsewhere)
on consecutive positions right after a seg token: proactive answers (`☟`) after the frame block of the first frame
inside the event's informative window (where the trigger is meant to fire), answers to user texts (`☜`) after that
text's block, later tokens on the following user rows (watching while speaking). LM labels sit only on answer tokens
(label at row p = agent token of row p+1: marker, text, `<|im_end|>`); every frame block's last visual token carries
the informative label (1 from the midpoint to the end of a proactive event window, else 0); all else is ignored.

The vision tower and audio encoder are frozen (as in the official recipe), so their outputs are computed once per
stream (`encode_stream`): pooled vision features before the trainable projector, audio tokens after the adapter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vispeak_ros.core.events import Behaviour
from vispeak_ros.model.processors import audio_chunk_features, preprocess_images
from vispeak_ros.model.prompts import StreamTemplate
from vispeak_ros.model.tokenizer import PROACTIVE_MARKER, TEXT_ANSWER_MARKER, ViSpeakTokenizer
from vispeak_ros.model.vision import pool_tokens
from vispeak_ros.model.vispeak import ViSpeakForCausalLM
from vispeak_ros.training.world import Stream

IGNORE = -100  # label value of positions without a loss


@dataclass(frozen=True)
class Block:
    """One user-stream block: `kind` system | frame | audio | text, its second (-1: system) and time in seconds."""

    kind: str
    second: int
    ids: tuple[int, ...]
    time: float
    text: str = ""


@dataclass(frozen=True)
class Answer:
    """An answer placed after the seg token of block `block` (index into the blocks)."""

    block: int
    marker: str
    text: str
    time: float
    behaviour: Behaviour | None  # None: an answer to small talk


@dataclass
class Sample:
    """One stream as rows: user ids (placeholders for frames/audio), agent ids, LM and informative labels."""

    name: str
    blocks: list[Block]
    block_ends: list[int]  # position of each block's seg token
    user_ids: torch.Tensor  # [T] long (pad ids on rows appended after the stream for answers that run over)
    agent_ids: torch.Tensor  # [T] long
    lm_labels: torch.Tensor  # [T] long, IGNORE where no loss
    info_labels: torch.Tensor  # [T] float, IGNORE where no loss
    answers: list[Answer]


def segment_count(stream: Stream) -> int:
    """Whole 1 s segments of the stream (a started last second counts)."""
    return max(1, math.ceil(stream.duration_s - 1e-6))


def stream_blocks(stream: Stream, template: StreamTemplate, system: str = "vispeak") -> list[Block]:
    """The stream's user-stream blocks in the shared segment layout."""
    texts: dict[int, list[tuple[float, str]]] = {}
    for turn in stream.turns:
        if turn.role == "user":
            texts.setdefault(min(math.floor(turn.time), segment_count(stream) - 1), []).append((turn.time, turn.text))
    blocks = [Block("system", -1, tuple(template.system(system)), 0.0)]
    for k in range(segment_count(stream)):
        said = texts.get(k, [])
        ids = template.second([t for _, t in said], audio=True)
        blocks.append(Block("frame", k, tuple(ids[0]), float(k)))
        blocks.append(Block("audio", k, tuple(ids[1]), float(k)))
        blocks += [Block("text", k, tuple(i), time, text) for i, (time, text) in zip(ids[2:], said, strict=True)]
    return blocks


def is_proactive(behaviour: Behaviour) -> bool:
    """Visual reference answers a user text (☜); every other world behaviour is a proactive visual answer (☟)."""
    return behaviour != Behaviour.VISUAL_REFERENCE


def informative_frame(stream: Stream, second: int) -> bool:
    """Frame label: inside the second half of a proactive event's window."""
    return any(is_proactive(e.behaviour) and e.informative(float(second)) for e in stream.events)


def onset_frame(stream: Stream, second: int) -> bool:
    """Inside the first half of a proactive event's window: the gesture is already on screen, the label still 0."""
    return any(
        is_proactive(e.behaviour) and e.timespan[0] <= second < e.label_window[0] and not e.informative(float(second))
        for e in stream.events
    )


def plan_answers(
    stream: Stream, blocks: Sequence[Block], *, small_talk: bool = True, events: bool = True
) -> list[Answer]:
    """Where each answer of the stream starts (see the module docstring)."""
    text_block = {(b.time, b.text): i for i, b in enumerate(blocks) if b.kind == "text"}
    frame_block = {b.second: i for i, b in enumerate(blocks) if b.kind == "frame"}
    answers: list[Answer] = []
    if small_talk:
        turns = list(stream.turns)
        for j, turn in enumerate(turns):
            if turn.role != "assistant":
                continue
            question = next(t for t in reversed(turns[:j]) if t.role == "user")
            answers.append(
                Answer(text_block[(question.time, question.text)], TEXT_ANSWER_MARKER, turn.text, question.time, None)
            )
    if events:
        for event in stream.events:
            if not is_proactive(event.behaviour):
                question = event.context[-1]
                block = text_block[(question.time, question.text)]
                answers.append(Answer(block, TEXT_ANSWER_MARKER, event.answer, question.time, event.behaviour))
                continue
            start, end = event.label_window
            seconds = [k for k in frame_block if start <= k <= end]
            second = seconds[0] if seconds else min(math.floor(start), max(frame_block))
            answers.append(Answer(frame_block[second], PROACTIVE_MARKER, event.answer, float(second), event.behaviour))
    return sorted(answers, key=lambda a: a.block)


def build_sample(
    stream: Stream,
    tokenizer: ViSpeakTokenizer,
    answers: Sequence[Answer] | None = None,
    system: str = "vispeak",
    onset_labels: bool = True,
) -> Sample:
    """Rows, agent stream and labels of one stream (answers default to `plan_answers`). `onset_labels` False leaves
    the frames of an event window's first half unlabelled (IGNORE) instead of 0."""
    specials = tokenizer.special_tokens()
    template = StreamTemplate(tokenizer)
    blocks = stream_blocks(stream, template, system)
    answers = plan_answers(stream, blocks) if answers is None else list(answers)
    user: list[int] = []
    ends: list[int] = []
    for block in blocks:
        user.extend(block.ids)
        ends.append(len(user) - 1)
    agent = [specials.pad] * len(user)
    lm = [IGNORE] * len(user)
    info = [float(IGNORE)] * len(user)
    for block, end in zip(blocks, ends, strict=True):
        if block.kind == "frame" and (onset_labels or not onset_frame(stream, block.second)):
            info[end - 1] = float(informative_frame(stream, block.second))
    busy_until = -1
    for answer in answers:
        seg = ends[answer.block]
        if seg <= busy_until:  # an earlier answer is still being spoken over these rows: this one cannot start
            continue
        tokens = [tokenizer.single_id(answer.marker), *tokenizer.encode(answer.text), specials.im_end]
        need = seg + len(tokens) + 1 - len(user)
        if need > 0:  # the answer runs past the stream: pad user rows, as the official loop appends
            user += [specials.pad] * need
            agent += [specials.pad] * need
            lm += [IGNORE] * need
            info += [float(IGNORE)] * need
        for j, token in enumerate(tokens):
            agent[seg + 1 + j] = token
            lm[seg + j] = token
        busy_until = seg + len(tokens)
    return Sample(
        name=stream.name,
        blocks=blocks,
        block_ends=ends,
        user_ids=torch.tensor(user, dtype=torch.long),
        agent_ids=torch.tensor(agent, dtype=torch.long),
        lm_labels=torch.tensor(lm, dtype=torch.long),
        info_labels=torch.tensor(info, dtype=torch.float32),
        answers=answers,
    )


@dataclass
class StreamFeatures:
    """Frozen-encoder outputs of one stream: vision before the projector, audio after the adapter."""

    vision: torch.Tensor  # [segments, 64, mm_hidden]
    audio: torch.Tensor  # [segments, 12, H]


@torch.no_grad()
def encode_stream(model: ViSpeakForCausalLM, stream: Stream, batch: int = 16) -> StreamFeatures:
    """One frame per second (the frame at or before each segment's start) and the audio in exact 1 s chunks."""
    cfg = model.config
    assert cfg.vision is not None and cfg.audio is not None
    n = segment_count(stream)
    pixels = preprocess_images([stream.frame_at(float(k)) for k in range(n)], cfg.vision)
    vision = torch.cat(
        [pool_tokens(model.vision_features(pixels[i : i + batch]), cfg.pooling_size) for i in range(0, n, batch)]
    )
    fbank, lengths = audio_chunk_features(stream.audio[: n * 16000], cfg.audio.fbank)
    if fbank.shape[0] < n:  # silence for seconds the waveform does not reach
        missing = n - fbank.shape[0]
        fbank = torch.cat([fbank, torch.zeros(missing, *fbank.shape[1:])])
        lengths = torch.cat([lengths, lengths.new_full((missing,), fbank.shape[1])])
    audio = model.encode_audio(fbank[:n], lengths[:n])
    return StreamFeatures(vision=vision.float(), audio=audio.float())


def user_embeddings(model: ViSpeakForCausalLM, sample: Sample, feats: StreamFeatures) -> torch.Tensor:
    """User-stream rows [T, H]: token embeddings with frame (projected now: the projector trains) and audio rows."""
    return model.embed_user_stream(sample.user_ids, model.mm_projector(feats.vision), feats.audio)


def crop(sample: Sample, feats: StreamFeatures, first: int, last: int) -> tuple[Sample, StreamFeatures] | None:
    """The system prompt followed by seconds [first, last) of a sample, or None when an answer is being spoken at
    the cut (the crop would start mid-answer). Short crops train attention to find the current frame quickly; the
    labels are those of the full stream, row for row."""
    keep = [i for i, b in enumerate(sample.blocks) if first <= b.second < last]
    if not keep:
        return None
    start = sample.block_ends[keep[0] - 1] + 1
    stop = sample.block_ends[keep[-1]] + 1
    system_end = sample.block_ends[0] + 1
    if int(sample.agent_ids[start]) != int(sample.agent_ids[system_end]):  # the row after the system prompt is pad
        return None
    rows = torch.cat([torch.arange(system_end), torch.arange(start, stop)])
    offset = start - system_end
    blocks = [sample.blocks[0], *(sample.blocks[i] for i in keep)]
    ends = [sample.block_ends[0], *(sample.block_ends[i] - offset for i in keep)]
    cropped = Sample(
        name=f"{sample.name}[{first}:{last}]",
        blocks=blocks,
        block_ends=ends,
        user_ids=sample.user_ids[rows],
        agent_ids=sample.agent_ids[rows],
        lm_labels=sample.lm_labels[rows],
        info_labels=sample.info_labels[rows],
        answers=[],
    )
    return cropped, StreamFeatures(vision=feats.vision[first:last], audio=feats.audio[first:last])


def add_silence_labels(sample: Sample, pad: int, kinds: tuple[str, ...] = ("frame",)) -> Sample:
    """Label pad (stay silent) at the seg row of every block of these kinds where no answer starts and none is
    running: the speak/stay-silent decision as an LM target, the frame-level analogue of the spec's pad labels after
    audio segments in audio-proactive data. It gives the tiny from-scratch LLM a dense signal for finding events in
    the current frame, which the informative head (the row before) shares. With "audio" too, reactive decisions
    (argmax at audio seg rows, where a spoken question would be answered) learn to stay silent."""
    for block, end in zip(sample.blocks, sample.block_ends, strict=True):
        if block.kind not in kinds or int(sample.lm_labels[end]) != IGNORE or end + 1 >= len(sample.agent_ids):
            continue
        if int(sample.agent_ids[end + 1]) == pad and int(sample.agent_ids[end]) == pad:
            sample.lm_labels[end] = pad
    return sample
