"""Drive ViSpeak-Bench clips through the model as the official harness does (HumanMLLM/ViSpeak `ViSpeak_bench.py`).

Per clip: the system prompt (`vispeak`; `video` for Visual Reference) + seg, then by time (frames before a text at the
same time) one block per sampled frame (visual rows + seg) and per user text (ids + seg). No audio at all. Where the
subtask wants it, the previous answer ("☜" + text + <|im_end|>) is pre-filled in the agent stream from the row after
the question's seg. Everything up to the *start segment* is prefilled in one pass, with the decision at its seg row;
the loop then goes on block by block, pushing sigmoid(informative logit of the row before each seg) into the queue of
3 at every seg row (frames and texts alike, as the official loop does) and speaking when the sum exceeds 0.35 (☟
forced), or, for Visual Reference, when the argmax at a seg row is not pad. Answers are greedy and run on over 128
pad rows after the last block. The first answer is the clip's answer; its response time is the time of the block
whose seg row started it. Start segments (`Plan.start`):
- Anomaly Warning, Humor Reaction, Visual Wake-Up: the first frame;
- Visual Interruption: the block after the question; the pre-filled answer is visible only up to there (the
  official loop overwrites its continuation by pad), so the model sees the answer being cut by what follows;
- Visual Termination, Gesture Understanding: the first block whose seg comes after the end of the pre-filled answer;
- Visual Reference: the question, the last block.

Differences from the official code, on purpose: the fused embeddings use the trained [agent, user] order in the
prefill too (the official prefill swaps them; see the model layer), and Visual Interruption with a question after the
last frame starts at the question instead of failing. With `official_quirks` the *reported* values follow the
released harness: a clip without an answer is reported at its loop's starting timestamp (`timestamps[start - 1]`, the
last block's time when the loop starts at the first block) with empty text, and the answer text keeps only what falls
in the first 2048 agent positions of the loop (it cuts its output there, silent positions included).

Parallel runs: `RANK` / `WORLD_SIZE` / `LOCAL_RANK` (as `torchrun` and `accelerate launch` set them) shard the clips
(clip i goes to rank i mod world); `workers` more processes per rank split that rank's share the same way, each with
its own model (on `cuda:<local rank>` when the device is plain "cuda"). Every process logs its finished clips
(`predictions.ShardLog`); whoever finds a subtask complete writes its `<Task>_output.json`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vispeak_ros.evaluation import predictions as preds
from vispeak_ros.evaluation.annotations import Item
from vispeak_ros.evaluation.frames import Clip, ClipError, read_clip

PADDING_ROWS = 128  # pad user rows after the last block (official padding_size)
OFFICIAL_OUTPUT_TOKENS = 2048  # the official max_new_tokens cut, applied to every loop position
THRESHOLD = 0.35


@dataclass(frozen=True)
class Block:
    kind: str  # "frame" or "text"
    time: float  # seconds; the official sort key (Visual Reference's question sorts last at 100000)
    frame: int = -1  # index into the clip's frames
    ids: tuple[int, ...] = ()  # text ids (without the seg)


@dataclass
class Plan:
    """The user stream of one clip, block by block, and what the agent stream holds before decoding starts."""

    system_ids: list[int]
    blocks: list[Block]
    ends: list[int]  # rows up to and including each block's seg (system prompt included): the official num_token
    agent: list[int]  # agent-stream ids of every row (pad, or the pre-filled answer)
    start: int  # the block whose seg row takes the first decision
    notes: list[str] = field(default_factory=list)

    @property
    def timestamps(self) -> list[float]:
        return [b.time for b in self.blocks]


def build_plan(
    item: Item,
    times: Sequence[float],
    frame_rows: int,
    encode: Callable[[str], list[int]],
    tokens: Any,
    system_prompts: dict[str, str],
) -> Plan:
    """The official layout of one clip (no model needed: `frame_rows` is the rows of a frame block, seg included)."""
    system_ids = [*encode(system_prompts[item.task.system_prompt]), tokens.seg]
    entries: list[tuple[float, int, Block]] = [(t, 0, Block("frame", t, frame=i)) for i, t in enumerate(times)]
    entries += [(t, 1, Block("text", t, ids=tuple(encode(text)))) for t, text in item.texts]
    blocks = [b for _, _, b in sorted(entries, key=lambda e: (e[0], e[1]))]  # frames first at equal times
    ends, total = [], len(system_ids)
    for block in blocks:
        total += frame_rows if block.kind == "frame" else len(block.ids) + 1
        ends.append(total)
    agent = [tokens.pad] * total
    plan = Plan(system_ids, blocks, ends, agent, 0)
    driving = item.task.driving
    if driving == "question":
        plan.start = len(blocks) - 1
    elif driving in ("interrupt", "prefilled"):
        question = next(k for k, b in enumerate(blocks) if b.kind == "text")
        at = ends[question]
        answer = [*_marked(item.prefill or "", encode, tokens), tokens.im_end]
        answer = answer[: max(0, total - at)]
        agent[at : at + len(answer)] = answer
        if driving == "interrupt":
            plan.start = question + 1
            if plan.start >= len(blocks):
                plan.start = question
                plan.notes.append("the question comes after the last frame: decoding starts at the question")
        else:
            after = [k for k, end in enumerate(ends) if end > at + len(answer)]
            plan.start = after[0] if after else len(blocks) - 1
    return plan


def _marked(text: str, encode: Callable[[str], list[int]], tokens: Any) -> list[int]:
    """Ids of "☜" + text as the official harness tokenizes it (one string: a byte-level BPE may cut differently at
    the join); a tokenizer that does not split the marker off (a word-level one) gets the marker id + the text."""
    from vispeak_ros.model.tokenizer import TEXT_ANSWER_MARKER

    joint = encode(TEXT_ANSWER_MARKER + text)
    return joint if joint[:1] == [tokens.text_answer] else [tokens.text_answer, *encode(text)]


@dataclass
class Outcome:
    text: str
    time: float | None
    official_text: str
    official_time: float


def _answer_ids(stream: Sequence[int], tokens: Any) -> list[int] | None:
    """The first answer in a loop's emitted tokens: from its marker to <|im_end|> (or the end)."""
    begin = next((i for i, t in enumerate(stream) if t != tokens.pad), None)
    if begin is None:
        return None
    ids = list(stream[begin:])
    if tokens.im_end in ids:
        ids = ids[: ids.index(tokens.im_end) + 1]
    return ids


def drive(
    session,
    system_rows,
    rows: Callable[[Block], Any],
    plan: Plan,
    padding_rows: int = PADDING_ROWS,
    prefill_order: str = "agent_first",
) -> tuple[list[int], int | None]:
    """The official loop over one plan, on a fresh `StreamingSession`: prefill through the start block (decision at
    its seg row), then block by block until the first answer ends, then pad rows while it still runs. Returns the
    agent tokens from the start block's seg row on, up to and including the first <|im_end|> (the official
    loop's output ids), and the index of the block whose seg row started the answer (None: no answer).
    `prefill_order="user_first"` reproduces the official prefill's swapped fusion (parity tests only)."""
    tokens = session.tokens
    first = [rows(b) for b in plan.blocks[: plan.start + 1]]
    result = session.start(
        [system_rows, *first], agent_ids=plan.agent[: plan.ends[plan.start]], prefill_order=prefill_order
    )
    stream = [result.emitted[-1]]
    answer_block = plan.start if result.started else None
    for k in range(plan.start + 1, len(plan.blocks)):
        if answer_block is not None and tokens.im_end in stream:
            break
        result = session.feed(rows(plan.blocks[k]))
        stream += result.emitted
        if answer_block is None and result.started:
            answer_block = k
    if session.speaking and tokens.im_end not in stream:
        stream += session.finish(padding_rows).emitted
    if answer_block is not None and tokens.im_end in stream:
        stream = stream[: stream.index(tokens.im_end) + 1]  # the official loop stops there
    return stream, answer_block


class ClipRunner:
    """One loaded model; runs plans with a fresh streaming session each (batch 1, no cache eviction)."""

    def __init__(self, model, threshold: float = THRESHOLD) -> None:
        import torch

        if model.tokenizer is None:
            raise ValueError("the checkpoint has no tokenizer files: generation needs them")
        self.model = model
        self.threshold = threshold
        self.tokenizer = model.tokenizer
        self.tokens = model.tokenizer.special_tokens()
        with torch.no_grad():
            self._seg = model.embed_tokens(torch.tensor([self.tokens.seg], device=model.device))
        self.frame_rows = self.encode_frames([_black(model)])[0].shape[0]

    def encode_frames(self, frames: Sequence[Any], batch: int = 16) -> list:
        import torch

        from vispeak_ros.model.processors import preprocess_image

        model, out = self.model, []
        with torch.no_grad():
            for i in range(0, len(frames), batch):
                pixels = torch.stack([preprocess_image(f, model.config.vision) for f in frames[i : i + batch]])
                feats = model.encode_images(pixels.to(model.device, model.dtype))
                out += [torch.cat([f, self._seg.to(f.dtype)]) for f in feats]
        return out

    def plan(self, item: Item, clip: Clip) -> Plan:
        from vispeak_ros.model.prompts import SYSTEM_PROMPTS

        return build_plan(item, clip.times, self.frame_rows, self.tokenizer.encode, self.tokens, SYSTEM_PROMPTS)

    def run(self, item: Item, clip: Clip) -> Outcome:
        import torch

        from vispeak_ros.model.session import StreamingSession

        plan = self.plan(item, clip)
        frames = self.encode_frames(clip.frames)
        model, tokens = self.model, self.tokens

        def rows(block: Block):
            if block.kind == "frame":
                return frames[block.frame]
            return model.embed_tokens(torch.tensor([*block.ids, tokens.seg], device=model.device))

        proactive = item.task.proactive
        session = StreamingSession(
            model,
            tokens,
            window_tokens=None,
            max_segment_tokens=1 << 20,
            proactive=proactive,
            reactive=not proactive,
            threshold=self.threshold,
            max_answer_tokens=1 << 20,
        )
        system = model.embed_tokens(torch.tensor(plan.system_ids, device=model.device))
        stream, answer_block = drive(session, system, rows, plan)
        return self._outcome(item, plan, clip, stream, answer_block)

    def _outcome(self, item: Item, plan: Plan, clip: Clip, stream: list[int], answer_block: int | None) -> Outcome:
        tokens, decode = self.tokens, self.tokenizer.decode_answer
        ids = _answer_ids(stream, tokens)
        official_ids = _answer_ids(stream[:OFFICIAL_OUTPUT_TOKENS], tokens)
        stamps = plan.timestamps
        official_idle_time = stamps[plan.start - 1]  # where the released loop's output time starts (-1: the last)
        if answer_block is None or ids is None:
            return Outcome("", None, "", official_idle_time)
        official_time = stamps[answer_block]
        when = official_time
        if plan.blocks[answer_block].kind == "text" and not item.task.timed:
            when = clip.times[-1]  # VR's question has a sort key, not a time: report the last frame's time
        return Outcome(decode(ids), when, decode(official_ids) if official_ids else "", official_time)


def _black(model):
    import numpy as np

    size = model.config.vision.image_size
    return np.zeros((size, size, 3), np.uint8)


# ---------------------------------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class RunSpec:
    annotations: str
    media: str  # folder the annotations' `video` paths are relative to (video files or rosbag2 recordings)
    output: str
    tasks: tuple[str, ...]
    checkpoint: str = ""  # empty: the bundled demo checkpoint
    vision_tower: str = ""
    audio_encoder: str = ""
    device: str = "cpu"
    dtype: str = "float32"
    limit: int | None = None  # the first N clips of each subtask (smoke runs)
    threshold: float = THRESHOLD  # the trigger rule's threshold on the sum of the last 3 informative probabilities
    official_quirks: bool = False

    def cli_args(self) -> list[str]:
        """The `vispeak-eval run` arguments that give this spec (for worker processes)."""
        return _spec_args(self)


def _spec_args(spec: RunSpec) -> list[str]:
    args = ["--annotations", spec.annotations, "--videos", spec.media, "--output", spec.output]
    args += ["--tasks", ",".join(spec.tasks), "--device", spec.device, "--dtype", spec.dtype]
    args += ["--threshold", repr(spec.threshold), "--workers", "1"]
    for flag, value in [("--checkpoint", spec.checkpoint), ("--vision-tower", spec.vision_tower)]:
        if value:
            args += [flag, value]
    if spec.audio_encoder:
        args += ["--audio-encoder", spec.audio_encoder]
    if spec.limit:
        args += ["--limit", str(spec.limit)]
    if spec.official_quirks:
        args.append("--official-quirks")
    return args


def distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank) from the launcher's environment (torchrun, accelerate launch); (0, 1, 0)."""

    def read(name: str, default: int) -> int:
        value = os.environ.get(name, "")
        if not value:
            return default
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None

    rank, world, local = read("RANK", 0), read("WORLD_SIZE", 1), read("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK {rank} / WORLD_SIZE {world} are inconsistent")
    return rank, world, local


def media_path(spec: RunSpec, item: Item) -> Path:
    """The clip's file: `<media>/<video>`, or, when that does not exist, a recording of the same stem (a rosbag2
    folder `<media>/<video without suffix>` or a `.mcap` file), so bags can stand in for the benchmark's videos."""
    path = Path(spec.media) / item.video
    for candidate in (path, path.with_suffix(""), path.with_suffix(".mcap")):
        if candidate.exists():
            return candidate
    return path


def pending(spec: RunSpec, all_items: dict[str, list[Item]], rank: int, world: int) -> list[Item]:
    """This rank's clips that have no record yet (clip i of a subtask belongs to rank i mod world)."""
    todo = []
    for name in spec.tasks:
        done = preds.done_records(spec.output, name)
        items = all_items[name][: spec.limit] if spec.limit else all_items[name]
        todo += [it for it in items if it.index % world == rank and it.video not in done]
    return todo


def load_runner(spec: RunSpec, device: str) -> ClipRunner:
    import torch

    from vispeak_ros.model import load_checkpoint

    path = spec.checkpoint
    if not path:
        from vispeak_ros.data import demo_checkpoint

        path = str(demo_checkpoint())
    model = load_checkpoint(
        path,
        dtype=getattr(torch, spec.dtype),
        device=device,
        vision_tower=spec.vision_tower or None,
        audio_encoder=spec.audio_encoder or None,
    )
    return ClipRunner(model, spec.threshold)


def run_shard(
    spec: RunSpec,
    all_items: dict[str, list[Item]],
    rank: int,
    world: int,
    device: str,
    log: Callable[[str], None] = print,
) -> int:
    """Run this rank's pending clips; returns how many were run. Loads the model only when there is work.

    Missing media are refused before the model loads (a wrong `--videos` folder); a clip that cannot be decoded is
    reported on stderr and skipped, the others go on, and the run then fails naming how many were skipped (its
    subtask's predictions file is not written until a rerun succeeds on it)."""
    todo = pending(spec, all_items, rank, world)
    if not todo:
        return 0
    missing = [media_path(spec, item) for item in todo if not media_path(spec, item).exists()]
    if missing:
        raise ClipError(f"{len(missing)} of {len(todo)} clips have no video or recording, e.g. {missing[0]}")
    runner = load_runner(spec, device)
    logs: dict[str, preds.ShardLog] = {}
    skipped: list[str] = []
    for n, item in enumerate(todo, 1):
        started = time.perf_counter()
        try:
            clip = read_clip(media_path(spec, item), item.start_time, item.end_time)
        except ClipError as error:
            print(f"vispeak-eval run: skipped {item.task.name} {item.video}: {error}", file=sys.stderr)
            skipped.append(item.video)
            continue
        outcome = runner.run(item, clip)
        wall = time.perf_counter() - started
        record = preds.Record(
            item.video,
            outcome.text,
            outcome.time,
            outcome.official_text,
            outcome.official_time,
            frames=len(clip.frames),
            wall_s=round(wall, 3),
        )
        log_file = logs.setdefault(item.task.name, preds.ShardLog(spec.output, item.task.name, rank))
        log_file.append(record)
        when = "no answer" if outcome.time is None else f"{outcome.time:.1f} s"
        log(
            f"[rank {rank}/{world}] {n}/{len(todo)} {item.task.name} {item.video}: {when}, {len(clip.frames)} frames, "
            f"{wall:.1f} s"
        )
    if skipped:
        raise ClipError(f"{len(skipped)} clips could not be read (first: {skipped[0]}); the others are saved")
    return len(todo)


def _device_for(spec: RunSpec, slot: int) -> str:
    if spec.device != "cuda":
        return spec.device
    import torch

    count = torch.cuda.device_count()
    return f"cuda:{slot % count}" if count else "cuda"


def _run_workers(spec: RunSpec, rank: int, world: int, local: int, workers: int) -> None:
    """`workers` child processes of `vispeak-eval run`, each one rank of world x workers: worker w of rank r is rank
    w * world + r, so it takes a part of rank r's own share. Fresh interpreters (no fork of a process holding
    threads), each loading its own model; their output goes to ours."""
    import subprocess

    threads = str(max(1, (os.cpu_count() or 1) // workers))
    procs = []
    for w in range(workers):
        env = {
            **os.environ,
            "RANK": str(w * world + rank),
            "WORLD_SIZE": str(world * workers),
            "LOCAL_RANK": str(local * workers + w),
            "OMP_NUM_THREADS": threads,
        }
        command = [sys.executable, "-m", "vispeak_ros.evaluation.cli", "run", *spec.cli_args()]
        procs.append(subprocess.Popen(command, env=env))
    codes = [p.wait() for p in procs]
    failed = [code for code in codes if code]
    if failed:
        raise RuntimeError(f"{len(failed)} of {workers} worker processes failed (see their errors above)")


def run(
    spec: RunSpec, all_items: dict[str, list[Item]], workers: int = 1, log: Callable[[str], None] = print
) -> tuple[int, list[Path]]:
    """Run every pending clip of this launcher rank (in `workers` processes), then write each complete subtask's
    predictions file. Returns (clips run here, files written)."""
    rank, world, local = distributed()
    ran = 0
    if workers <= 1:
        ran = run_shard(spec, all_items, rank, world, _device_for(spec, local), log)
    else:
        todo = pending(spec, all_items, rank, world)
        if todo:
            _run_workers(spec, rank, world, local, workers)
            ran = len(todo) - len(pending(spec, all_items, rank, world))
    written = []
    for name in spec.tasks:
        items = all_items[name][: spec.limit] if spec.limit else all_items[name]
        path = preds.merge(spec.output, name, [it.video for it in items], spec.official_quirks)
        if path is not None:
            written.append(path)
    return ran, written
