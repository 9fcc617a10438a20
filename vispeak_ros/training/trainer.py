"""The demo training recipe: build a tiny official-layout ViSpeak, generate the synthetic world, optionally teach the
vision tower to see it (training.vision_pretrain), cache the frozen encoders, train projector + LLM + fusion +
informative head with AdamW and a cosine schedule, save safetensors.

This is the streaming stage (stage 2) of the official three-stage recipe at toy scale: same template, answer
placement, labels and losses; the encoders stay frozen (no pretrained weights can be downloaded: they stay random,
or the vision tower gets a short pre-training of its own on the world with `vision_steps`). Full-parameter training
replaces LoRA because the tiny LLM starts from scratch.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from vispeak_ros.model.config import AudioConfig, VisionConfig, ViSpeakConfig, llm_config_from_dict
from vispeak_ros.model.processors import fbank
from vispeak_ros.model.tokenizer import ViSpeakTokenizer
from vispeak_ros.model.vispeak import ViSpeakForCausalLM
from vispeak_ros.model.writer import AUDIO_FOLDER, VISION_FOLDER, save_checkpoint
from vispeak_ros.training import world
from vispeak_ros.training.data import (
    Sample,
    StreamFeatures,
    add_silence_labels,
    build_sample,
    crop,
    encode_stream,
    user_embeddings,
)
from vispeak_ros.training.losses import FOCAL_ALPHA, streaming_loss
from vispeak_ros.training.tokenizer_build import build_tokenizer, save_tokenizer


@dataclass
class Recipe:
    """Everything that decides the demo checkpoint (YAML keys of `vispeak-train --config`)."""

    seed: int = 0
    steps: int = 10000
    lr: float = 2.5e-3
    warmup: float = 0.03  # fraction of the steps
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    # Weight of the focal loss. The spec's is 1 (for a pretrained 7B LLM); the tiny LLM trained from scratch lets the
    # LM loss dominate and its informative head then stays at the constant optimum (p ~ 0.2 for every frame, which
    # fires the 0.35 trigger at every frame): the demo recipe raises it.
    informative_weight: float = 50.0
    # Share of steps on a short crop (system prompt + a few seconds, most of them ending inside an event window):
    # a from-scratch LLM first learns to attend to the current frame on short rows, then keeps it on whole streams.
    crop_share: float = 0.7
    crop_seconds: list[int] = field(default_factory=lambda: [3, 8])
    crop_positive: float = 0.7  # share of crops that end inside a positive window (when the stream has one)
    # False: frames of an event window's first half (gesture on screen, before the label window) carry no
    # informative label instead of 0, so the head is not taught that a visible gesture is not an event.
    onset_labels: bool = False
    focal_alpha: float = 0.5  # weight of positives in the focal loss (the spec's is 0.25)
    # After training, scale the informative head's last layer so that the 0.35 trigger rule fires on events and not
    # on idle frames of the training streams (training.calibrate); the scale is recorded in training.json.
    calibrate: bool = True
    # Share of steps whose answers start over pad user rows (their first `TYPING_ROWS` rows): the runtime types an
    # answer by scoring its opening words over pad rows (runtime.event_typing), so the LM learns to open the same way
    # whatever the user rows under the answer hold.
    typing_pad_share: float = 0.0
    silence_labels: bool = True  # pad LM labels at frame seg rows without an answer (see data.add_silence_labels)
    audio_silence_labels: bool = False  # and at audio seg rows (reactive decisions stay silent there)
    hidden_size: int = 64
    num_layers: int = 3
    num_heads: int = 4
    num_kv_heads: int = 2
    vision_hidden: int = 32
    vision_layers: int = 1
    vision_heads: int = 2
    # The official tower reads 448 px (32 x 32 patches of 14) and pools the shuffled 16 x 16 grid to 8 x 8 tokens;
    # 224 px with pooling 1 gives the LLM the same 8 x 8 tokens per frame from 16 x fewer attention pairs.
    image_size: int = 448
    pooling_size: int = 2
    # Stage 0 (training.vision_pretrain): steps of dense pose/object targets that teach the tower to see the world
    # before it is frozen; 0 (the shipped checkpoint) keeps the random tower. training/demo_vision.yaml turns it on.
    vision_steps: int = 0
    vision_lr: float = 2e-3
    vision_batch: int = 16
    streams_per_scenario: int = 100
    sessions: int = 60
    # Extra event-free streams of `idle_seconds` each (the `none` scenario lasts 8-14 s): minutes of idle video at
    # the positions a long-running stream reaches, where false triggers are counted.
    idle_streams: int = 30
    idle_seconds: float = 60.0
    frame_sizes: list[list[int]] = field(default_factory=lambda: [[240, 240], [160, 160]])
    threads: int = 1  # 2 cores shared with other work: one thread avoids oversubscription stalls

    @classmethod
    def from_yaml(cls, path: Path) -> Recipe:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping of recipe keys")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{path}: unknown recipe key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**raw)


TYPING_ROWS = 2  # user rows padded under an answer's first tokens (typing_pad_share)


def demo_config(recipe: Recipe, vocab_size: int) -> ViSpeakConfig:
    """Official structure at toy sizes: InternViT with patch 14 (64 tokens per frame after the pixel shuffle: 448 px
    with pooling 2 as the official model, or 224 px without pooling), a 2-block whale audio encoder (12 tokens per
    second), a small Qwen2."""
    h = recipe.hidden_size
    llm = llm_config_from_dict(
        {
            "vocab_size": vocab_size,
            "hidden_size": h,
            "intermediate_size": 3 * h,
            "num_hidden_layers": recipe.num_layers,
            "num_attention_heads": recipe.num_heads,
            "num_key_value_heads": recipe.num_kv_heads,
            "rope_theta": 1e6,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": False,
            "max_position_embeddings": 8192,
        },
        "demo recipe",
    )
    vision = VisionConfig(
        hidden_size=recipe.vision_hidden,
        intermediate_size=2 * recipe.vision_hidden,
        num_hidden_layers=recipe.vision_layers,
        num_attention_heads=recipe.vision_heads,
        image_size=recipe.image_size,
        patch_size=14,
    )
    audio = AudioConfig(
        subsampling_output_dim=32,
        transformer_input_dim=32,
        attention_dim=32,
        attention_heads=2,
        linear_units=64,
        num_blocks=2,
        chunk_size=4,
        left_chunks=2,
        enc_out_dim=32,
        llm_embed_dim=h,
    )
    return ViSpeakConfig(
        llm=llm,
        vision=vision,
        audio=audio,
        mm_hidden_size=4 * vision.hidden_size,
        combination="adaptive_combine",
        use_informative_head=True,
        pooling_size=recipe.pooling_size,
        mm_vision_tower=VISION_FOLDER,
        mm_audio_encoder=AUDIO_FOLDER,
    )


def silence_kinds(recipe: Recipe) -> tuple[str, ...]:
    """Block kinds whose seg rows get pad labels when silent (`silence_labels`, `audio_silence_labels`)."""
    return ("frame", "audio") if recipe.audio_silence_labels else ("frame",)


def frozen_modules(model: ViSpeakForCausalLM) -> list[torch.nn.Module]:
    """The encoders the official recipe freezes (vision tower; audio encoder with its adapter)."""
    return [m for m in (model.vision_tower, model.audio_encoder) if m is not None]


def set_cmvn(model: ViSpeakForCausalLM, streams: list[world.Stream]) -> None:
    """Global CMVN from training audio, as the whale encoder's `global_cmvn` holds statistics of its training data."""
    assert model.audio_encoder is not None and model.config.audio is not None
    feats = torch.cat([fbank(s.audio[: 16000 * 8], model.config.audio.fbank) for s in streams])
    cmvn = model.audio_encoder.encoder.global_cmvn
    cmvn.mean.copy_(feats.mean(0))
    cmvn.istd.copy_(1.0 / feats.std(0).clamp_min(1e-3))


def training_streams(recipe: Recipe) -> list[world.Stream]:
    """The training split: every scenario (frame sizes alternating), sessions of 3-5 events (a fall only last), then
    long event-free streams."""
    rng = random.Random(recipe.seed)
    sizes = [tuple(s) for s in recipe.frame_sizes]
    streams = []
    count = recipe.streams_per_scenario * len(world.SCENARIOS) + recipe.sessions
    seeds = world.split_seeds(count + recipe.idle_streams, recipe.seed)
    idle_seeds, seeds = seeds[count:], seeds[:count]
    for i, seed in enumerate(seeds[: recipe.streams_per_scenario * len(world.SCENARIOS)]):
        scenario = world.SCENARIOS[i % len(world.SCENARIOS)]
        streams.append(world.generate(scenario, seed, "train", size=sizes[i % len(sizes)], fps=1.0))
    events = [s for s in world.BEHAVIOURS if s != "fall"]
    for i, seed in enumerate(seeds[recipe.streams_per_scenario * len(world.SCENARIOS) :]):
        steps = rng.sample(events, rng.randint(3, 5))
        if rng.random() < 0.3:
            steps[-1] = "fall"
        streams.append(world.generate_session(seed, steps, "train", size=sizes[i % len(sizes)], fps=1.0))
    for i, seed in enumerate(idle_seeds):
        streams.append(world.generate("none", seed, "train", recipe.idle_seconds, size=sizes[i % len(sizes)], fps=1.0))
    return streams


def new_model(recipe: Recipe, tokenizer: ViSpeakTokenizer) -> ViSpeakForCausalLM:
    """A freshly initialised demo model (seeded), encoders frozen."""
    torch.manual_seed(recipe.seed)
    vocab = len(tokenizer)
    model = ViSpeakForCausalLM(demo_config(recipe, vocab))
    model.tokenizer = tokenizer
    for module in frozen_modules(model):
        module.requires_grad_(False)
        module.eval()
    return model


@dataclass
class Prepared:
    """Samples with their cached encoder features."""

    samples: list[Sample]
    features: list[StreamFeatures]


def prepare(
    model: ViSpeakForCausalLM,
    streams: list[world.Stream],
    log: Callable[[str], None] = print,
    silence_labels: bool = False,
    onset_labels: bool = True,
    silence_kinds: tuple[str, ...] = ("frame",),
) -> Prepared:
    """Build every sample and run the frozen encoders once per stream."""
    assert model.tokenizer is not None
    pad = model.tokenizer.special_tokens().pad
    samples, feats = [], []
    start = time.monotonic()
    for i, stream in enumerate(streams):
        sample = build_sample(stream, model.tokenizer, onset_labels=onset_labels)
        samples.append(add_silence_labels(sample, pad, silence_kinds) if silence_labels else sample)
        feats.append(encode_stream(model, stream))
        if (i + 1) % 50 == 0 or i + 1 == len(streams):
            log(f"encoded {i + 1}/{len(streams)} streams ({time.monotonic() - start:.0f} s)")
    return Prepared(samples, feats)


def step_outputs(
    model: ViSpeakForCausalLM,
    sample: Sample,
    feats: StreamFeatures,
    informative_weight: float = 1.0,
    focal_alpha: float = FOCAL_ALPHA,
    pad_rows: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(total, lm, focal, informative logits) of one sample: the official training forward (positions 0..T-1).
    `pad_rows` (bool [T]) replaces those user rows by the pad token's embedding."""
    user = user_embeddings(model, sample, feats)
    if pad_rows is not None and bool(pad_rows.any()):
        assert model.tokenizer is not None
        pad = model.embed_tokens(torch.tensor([model.tokenizer.special_tokens().pad], device=user.device))
        user = torch.where(pad_rows[:, None].to(user.device), pad, user)
    logits, informative = model(sample.agent_ids[None], user[None])
    info = None if informative is None else informative[0]
    _, lm, focal = streaming_loss(logits[0], info, sample.lm_labels, sample.info_labels, focal_alpha)
    return lm + informative_weight * focal, lm, focal, info


def step_loss(
    model: ViSpeakForCausalLM, sample: Sample, feats: StreamFeatures, informative_weight: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, lm, focal) of one sample; total = lm + informative_weight * focal (1: the spec's sum)."""
    return step_outputs(model, sample, feats, informative_weight)[:3]


def lr_at(step: int, total: int, base: float, warmup: float) -> float:
    """Linear warm-up then cosine decay to 0."""
    warm = max(1, round(total * warmup))
    if step < warm:
        return base * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return base * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _maybe_crop(
    sample: Sample, feats: StreamFeatures, recipe: Recipe, rng: np.random.Generator
) -> tuple[Sample, StreamFeatures]:
    """With probability `crop_share`, a crop of `crop_seconds` seconds, ending inside a positive window when the
    stream has one (else anywhere); the whole sample otherwise or when no clean cut is found."""
    if rng.random() >= recipe.crop_share:
        return sample, feats
    seconds = feats.vision.shape[0]
    positives = [b.second for b, end in zip(sample.blocks, sample.block_ends, strict=True)
                 if b.kind == "frame" and float(sample.info_labels[end - 1]) == 1.0]  # fmt: skip
    for _ in range(8):
        length = int(rng.integers(recipe.crop_seconds[0], recipe.crop_seconds[1] + 1))
        if positives and rng.random() < recipe.crop_positive:
            last = int(rng.choice(positives)) + 1 + int(rng.integers(0, 3))
        else:
            last = int(rng.integers(1, seconds + 1))
        last = min(last, seconds)
        first = max(0, last - length)
        out = crop(sample, feats, first, last)
        if out is not None:
            return out
    return sample, feats


def answer_start_rows(sample: Sample, markers: set[int], rows: int = TYPING_ROWS) -> torch.Tensor:
    """Bool [T]: the first `rows` user rows under each answer (where the agent stream holds a marker and after)."""
    mask = torch.zeros(len(sample.agent_ids), dtype=torch.bool)
    for start in torch.nonzero(torch.isin(sample.agent_ids, torch.tensor(sorted(markers)))).flatten().tolist():
        mask[start : start + rows] = True
    return mask


@dataclass
class TrainResult:
    losses: list[float]
    seconds: float
    samples_per_s: float


def train(
    model: ViSpeakForCausalLM,
    data: Prepared,
    recipe: Recipe,
    steps: int | None = None,
    log: Callable[[str], None] = print,
    log_every: int = 50,
) -> TrainResult:
    """AdamW over the trainable parts, one stream per step in a seeded shuffled order."""
    total = recipe.steps if steps is None else steps
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay, betas=(0.9, 0.98))
    model.train()
    for module in frozen_modules(model):
        module.eval()
    rng = np.random.default_rng(recipe.seed)
    order: list[int] = []
    losses: list[float] = []
    window: list[tuple[float, float, float]] = []
    probs: dict[float, list[float]] = {0.0: [], 1.0: []}
    start = time.monotonic()
    assert model.tokenizer is not None
    specials = model.tokenizer.special_tokens()
    markers = set(specials.markers)
    for step in range(total):
        if not order:
            order = list(rng.permutation(len(data.samples)))
        i = order.pop()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total, recipe.lr, recipe.warmup)
        sample, feats = _maybe_crop(data.samples[i], data.features[i], recipe, rng)
        padded = recipe.typing_pad_share > 0 and rng.random() < recipe.typing_pad_share  # no draw at 0: same order
        pad_rows = answer_start_rows(sample, markers) if padded else None
        loss, lm, focal, info = step_outputs(
            model, sample, feats, recipe.informative_weight, recipe.focal_alpha, pad_rows
        )
        if info is not None:
            for target, values in probs.items():
                values += torch.sigmoid(info.detach()[sample.info_labels == target]).tolist()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, recipe.grad_clip)
        opt.step()
        values = (float(loss.detach()), float(lm.detach()), float(focal.detach()))
        losses.append(values[0])
        window.append(values)
        if (step + 1) % log_every == 0 or step + 1 == total:
            elapsed = time.monotonic() - start
            rate = (step + 1) / elapsed
            mean = np.mean(window, axis=0)
            log(
                f"step {step + 1}/{total} loss {mean[0]:.4f} (lm {mean[1]:.4f} focal {mean[2]:.4f}) "
                f"p(frame) event {np.mean(probs[1.0] or [0]):.2f} other {np.mean(probs[0.0] or [0]):.2f} "
                f"lr {opt.param_groups[0]['lr']:.2e} {rate:.1f} samples/s eta {(total - step - 1) / rate:.0f} s"
            )
            window.clear()
            probs = {0.0: [], 1.0: []}
    model.eval()
    seconds = time.monotonic() - start
    return TrainResult(losses, seconds, total / max(seconds, 1e-9))


def run_recipe(
    recipe: Recipe,
    output: Path,
    log: Callable[[str], None] = print,
    evaluate_after: bool = True,
) -> dict[str, Any]:
    """Retrain the demo checkpoint from scratch into `output`; returns timings (and held-out figures)."""
    torch.set_num_threads(recipe.threads)
    t0 = time.monotonic()
    tokenizer = save_tokenizer(build_tokenizer(), output)
    model = new_model(recipe, tokenizer)
    count = recipe.streams_per_scenario * len(world.SCENARIOS) + recipe.sessions + recipe.idle_streams
    log(f"generating {count} training streams")
    streams = training_streams(recipe)
    vision: dict[str, float] = {}
    v0 = time.monotonic()
    if recipe.vision_steps:
        from vispeak_ros.training.vision_pretrain import pretrain_vision

        vision = pretrain_vision(
            model, streams, recipe.vision_steps, recipe.vision_lr, recipe.vision_batch, recipe.seed, log=log
        )
    vision_s = time.monotonic() - v0
    set_cmvn(model, streams[:32])
    data = prepare(model, streams, log, recipe.silence_labels, recipe.onset_labels, silence_kinds(recipe))
    prep_s = time.monotonic() - t0
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"training {trainable} parameters for {recipe.steps} steps")
    result = train(model, data, recipe, log=log)
    info: dict[str, Any] = {
        "recipe": asdict(recipe),
        "streams": len(streams),
        "vision_s": round(vision_s, 1),
        **vision,
        "prepare_s": round(prep_s - vision_s, 1),
        "train_s": round(result.seconds, 1),
        "samples_per_s": round(result.samples_per_s, 2),
        "first_loss": round(float(np.mean(result.losses[:20])), 4),
        "last_loss": round(float(np.mean(result.losses[-20:])), 4),
    }
    if recipe.calibrate:
        from vispeak_ros.training.calibrate import calibrate

        info["informative_scale"] = calibrate(model, streams, data.samples, data.features)
        log(f"informative head scaled by {info['informative_scale']} (trigger calibration on the training streams)")
    if evaluate_after:
        from vispeak_ros.training.evaluate import evaluate, heldout_streams

        report = evaluate(model, heldout_streams())
        log(report.summary())
        info["heldout"] = report.as_dict()
    info["total_s"] = round(time.monotonic() - t0, 1)
    save_checkpoint(model, output, info)
    log(f"saved {output} ({info['total_s']} s)")
    return info
