"""One stage of the recipe under `accelerate`: load, freeze, LoRA, train, checkpoint, resume, merge and save.

Runs plain (`vispeak-train --stage N ...`), or through `accelerate launch` (DDP over gloo on CPU, NCCL on GPUs,
DeepSpeed ZeRO-2 when the accelerate config names `training/deepspeed/zero2.json`). Data order is a seeded
permutation per epoch, cut into global micro-batches of per_device_batch x processes; rank r takes its slice, so a
resumed run sees exactly the batches it would have seen. `accelerator.save_state` stores model, optimizer, RNG
states, the LR scheduler and the progress counter in `OUTPUT/checkpoint-STEP/`; `--resume` loads the latest one.
Logs: a progress line per `logging_steps`, `OUTPUT/logs/scalars.jsonl` always, TensorBoard event files through
accelerate's tracker when `tensorboard` is installed. The merged model is saved to `OUTPUT/model/` in the layout
`load_checkpoint` reads.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vispeak_ros.model.errors import CheckpointError
from vispeak_ros.model.loader import load_checkpoint
from vispeak_ros.model.vision import pool_tokens
from vispeak_ros.model.vispeak import ViSpeakForCausalLM
from vispeak_ros.model.writer import save_checkpoint
from vispeak_ros.training.losses import lm_loss, sigmoid_focal_loss
from vispeak_ros.training.recipe.dataset import Example, RecipeDataset, collate, load_items, truncate
from vispeak_ros.training.recipe.lora import apply_lora, has_lora, lora_parameters, merge_lora
from vispeak_ros.training.recipe.stages import StageConfig, dump, param_groups, reinitialise, set_trainable

CHECKPOINT_PREFIX = "checkpoint-"


class StageModule(torch.nn.Module):
    """The training forward as one module (what DDP/DeepSpeed wrap): frozen encoders, trainable projector/adapter,
    user-stream embedding, the two-stream LLM, LM + focal loss."""

    def __init__(self, model: ViSpeakForCausalLM, informative: bool, informative_weight: float) -> None:
        super().__init__()
        self.model = model
        self.informative = informative
        self.informative_weight = informative_weight

    def _images(self, example: Example) -> list[torch.Tensor]:
        m = self.model
        device = m.device
        out: dict[tuple[str, int], torch.Tensor] = {}
        if len(example.frames):
            with torch.no_grad():
                batches = [example.frames[i : i + 16].to(device, m.dtype) for i in range(0, len(example.frames), 16)]
                pooled = torch.cat([pool_tokens(m.vision_features(x), m.config.pooling_size) for x in batches])
            for k, feats in enumerate(m.mm_projector(pooled)):
                out[("frame", k)] = feats
        for j, tiles in enumerate(example.tiles):
            with torch.no_grad():
                pooled = pool_tokens(m.vision_features(tiles.to(device, m.dtype)), m.config.pooling_size)
            out[("image", j)] = m.mm_projector(pooled).reshape(-1, m.config.hidden_size)
        return [out[key] for key in example.rows.images]

    def _audio(self, example: Example) -> list[torch.Tensor]:
        if not len(example.fbank_lengths):
            return []
        encoder = self.model.audio_encoder
        assert encoder is not None
        dtype = encoder.adpter.project.weight.dtype
        with torch.no_grad():
            hidden, mask = encoder.encoder(example.fbank.to(self.model.device, dtype), example.fbank_lengths)
        feats, _ = encoder.adpter(hidden, mask)
        return list(feats)

    def forward(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        m = self.model
        pad = m.tokenizer.special_tokens().pad
        device = m.device
        users, length = [], max(len(e.rows.sample.user_ids) for e in examples)
        agent = torch.full((len(examples), length), pad, dtype=torch.long, device=device)
        lm = torch.full((len(examples), length), -100, dtype=torch.long, device=device)
        info = torch.full((len(examples), length), -100.0, device=device)
        for b, example in enumerate(examples):
            s = example.rows.sample
            audio = self._audio(example)
            audio = [a[:12] if a.shape[0] > 12 else a for a in audio]
            user = m.embed_user_stream(s.user_ids.to(device), self._images(example) or None, audio or None)
            users.append(torch.nn.functional.pad(user, (0, 0, 0, length - user.shape[0])))
            agent[b, : len(s.agent_ids)] = s.agent_ids.to(device)
            lm[b, : len(s.lm_labels)] = s.lm_labels.to(device)
            info[b, : len(s.info_labels)] = s.info_labels.to(device)
        # Right padding: pad rows come after every real row, so causal attention keeps them out of the real rows.
        logits, informative = m(agent, torch.stack(users))
        lm_value = lm_loss(logits.reshape(-1, logits.shape[-1]), lm.reshape(-1))
        if self.informative and informative is not None:
            focal = sigmoid_focal_loss(informative.reshape(-1), info.reshape(-1))
        else:
            focal = lm_value * 0.0
        return {"loss": lm_value + self.informative_weight * focal, "lm": lm_value.detach(), "focal": focal.detach()}


@dataclass
class Progress:
    """Saved with every checkpoint: optimizer steps and micro-batches done."""

    step: int = 0
    micro: int = 0

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step, "micro": self.micro}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step, self.micro = int(state["step"]), int(state["micro"])


@dataclass
class StageResult:
    losses: list[float] = field(default_factory=list)  # mean loss of every optimizer step (all processes)
    steps: int = 0
    start_step: int = 0
    samples: int = 0  # samples this run processed on all processes
    seconds: float = 0.0
    output: Path | None = None

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0


def load_base(config: StageConfig, device: torch.device) -> ViSpeakForCausalLM:
    """The stage's starting model. A plain VITA-1.5 checkpoint (no fusion gate, no informative head) is accepted
    only with `model.fresh: [fusion, informative_head]` (the alignment pass starts from one)."""
    spec = config.model
    device = torch.device("cpu") if device.type == "cpu" else device  # gloo ranks report cpu:0, safetensors wants cpu
    if not spec.init_from:
        raise CheckpointError(f"{config.source}: model.init_from is empty: name the checkpoint to start from")
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if spec.dtype not in dtypes:
        raise CheckpointError(f"{config.source}: model.dtype must be one of {', '.join(dtypes)}")
    try:
        model = load_checkpoint(spec.init_from, dtype=dtypes[spec.dtype], vision_tower=spec.vision_tower,
                                audio_encoder=spec.audio_encoder, device=device)  # fmt: skip
    except CheckpointError as error:
        if "plain VITA-1.5" not in str(error) or not {"fusion", "informative_head"} <= set(spec.fresh):
            raise
        model = load_vita(Path(spec.init_from), dtypes[spec.dtype], spec.vision_tower, spec.audio_encoder, device)
    if model.tokenizer is None:
        raise CheckpointError(f"{spec.init_from}: training needs the tokenizer files next to the weights")
    if model.config.vision is None or model.config.audio is None:
        raise CheckpointError(f"{spec.init_from}: training needs the vision tower and the audio encoder weights")
    return model


def load_vita(
    root: Path, dtype: torch.dtype, vision_tower: str | None, audio_encoder: str | None, device: torch.device
) -> ViSpeakForCausalLM:
    """A VITA-1.5 checkpoint in the same key layout without `model.combination.*`: the fusion gate (and the
    informative head) start fresh, every other tensor must be there. Unverified on the real VITA-1.5 files."""
    from vispeak_ros.model import loader
    from vispeak_ros.model.config import model_config_from_dict, read_json

    raw = read_json(root / "config.json")
    weights = loader._scan(loader._weight_files(root))
    config = model_config_from_dict({"combination": "adaptive_combine", **raw}, str(root / "config.json"))
    config.use_informative_head = False
    if weights.has_prefix(loader.VISION_PREFIX):
        folder = loader._resolve_folder(root, vision_tower, config.mm_vision_tower)
        config.vision = loader._vision_config(weights, folder, config.mm_vision_tower)
    if weights.has_prefix(loader.AUDIO_PREFIX):
        folder = loader._resolve_folder(root, audio_encoder, config.mm_audio_encoder)
        config.audio = loader._audio_config(weights, folder, config.mm_audio_encoder)
    model = ViSpeakForCausalLM(config).to(device, dtype)
    result = model.load_state_dict(loader._read_state(weights, dtype, device), strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("fusion.")]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"{root}: as VITA-1.5: missing {missing[:3]}, unexpected {result.unexpected_keys[:3]}")
    model.requires_grad_(False)
    model.tokenizer = loader.load_tokenizer(root)
    return model


def prepare_model(config: StageConfig, device: torch.device, log: Callable[[str], None]) -> ViSpeakForCausalLM:
    model = load_base(config, device)
    train = config.train
    wanted = list(config.model.fresh)
    if train.informative and model.informative_head is None and "informative_head" not in wanted:
        wanted.append("informative_head")
    if wanted:
        reinitialise(model, wanted, train.seed)
    if config.model.pooling_size is not None:
        model.config.pooling_size = config.model.pooling_size
    set_trainable(model, config.trainable)
    if config.lora is not None:
        apply_lora(model, config.lora)
    model.train()
    for frozen in (model.vision_tower, model.audio_encoder):  # frozen encoders: no dropout, fixed statistics
        if frozen is not None:
            frozen.eval()
    if config.trainable and "audio_adapter" in config.trainable and model.audio_encoder is not None:
        model.audio_encoder.adpter.train()
    if train.gradient_checkpointing:
        model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log(f"stage {config.stage}: {trainable:,} of {total:,} parameters train ({', '.join(config.trainable) or 'none'}"
        f"{f' + LoRA r {config.lora.r}: {lora_parameters(model):,}' if has_lora(model) else ''})")  # fmt: skip
    return model


def tokens_per_frame(model: ViSpeakForCausalLM) -> int:
    """Visual tokens per frame: the pixel-shuffled patch grid (side / patch / 2) pooled by pooling_size per side."""
    vision = model.config.vision
    assert vision is not None
    side = vision.image_size // vision.patch_size // 2 // max(1, model.config.pooling_size)
    return side * side


def _latest_checkpoint(output: Path) -> Path | None:
    found = sorted(
        (p for p in output.glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir() and p.name[len(CHECKPOINT_PREFIX) :].isdigit()),
        key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]),
    )
    return found[-1] if found else None


def _tracker() -> str | None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            return None
    return "tensorboard"


def run_stage(
    config: StageConfig,
    output: Path,
    *,
    entries: list[dict[str, Any]] | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> StageResult:
    """Train one stage into `output` (see the module docstring)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration, set_seed

    train = config.train
    if train.threads:
        torch.set_num_threads(train.threads)
    cpu = not torch.cuda.is_available()
    tracker = _tracker()
    accelerator = Accelerator(
        cpu=cpu,
        mixed_precision="no" if cpu and train.mixed_precision == "fp16" else train.mixed_precision,
        gradient_accumulation_steps=train.grad_accum,
        log_with=tracker,
        project_config=ProjectConfiguration(project_dir=str(output), logging_dir=str(output / "logs")),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    main = accelerator.is_main_process
    say = log if main else (lambda _line: None)
    set_seed(train.seed)
    items = load_items(entries if entries is not None else config.data)
    if not items:
        raise ValueError(f"{config.source}: no training items (data is empty)")
    model = prepare_model(config, accelerator.device, say)
    assert model.tokenizer is not None and model.config.vision is not None and model.config.audio is not None
    dataset = RecipeDataset(items, model.tokenizer, model.config.vision, model.config.audio, config.media,
                            tokens_per_frame(model))  # fmt: skip
    world = accelerator.num_processes
    per_micro = train.per_device_batch * world
    micro_per_epoch = len(items) // per_micro
    steps_per_epoch = micro_per_epoch // train.grad_accum
    if steps_per_epoch < 1:
        raise ValueError(
            f"{len(items)} items are too few for one step of {train.per_device_batch} x {world} processes x "
            f"{train.grad_accum} accumulation"
        )
    total = train.max_steps or max(1, math.ceil(steps_per_epoch * train.epochs))
    warmup = math.ceil(total * train.warmup_ratio)
    module = StageModule(model, train.informative, train.informative_weight)
    optimizer = torch.optim.AdamW(param_groups(module, train.lr, train.projector_lr, train.weight_decay),
                                  lr=train.lr, weight_decay=train.weight_decay)  # fmt: skip
    from transformers import get_cosine_schedule_with_warmup

    scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, total)  # stepped once per optimizer step
    _fill_deepspeed(accelerator, train.per_device_batch, train.grad_accum, train.max_grad_norm)
    module, optimizer = accelerator.prepare(module, optimizer)
    progress = Progress()
    accelerator.register_for_checkpointing(scheduler, progress)
    output.mkdir(parents=True, exist_ok=True)
    if resume:
        latest = _latest_checkpoint(output)
        if latest is None:
            say(f"--resume: no {CHECKPOINT_PREFIX}* in {output}; starting at step 0")
        else:
            accelerator.load_state(str(latest))
            say(f"resumed from {latest} at step {progress.step}")
    if main:
        (output / "stage.yaml").write_text(dump(config), encoding="utf-8")
    if tracker:
        accelerator.init_trackers(f"stage{config.stage}", config={"stage": config.stage, "lr": train.lr})
    say(f"{len(items)} items, {world} process(es) x batch {train.per_device_batch} x accumulation "
        f"{train.grad_accum}: {total} steps ({steps_per_epoch} per epoch), warm-up {warmup}, "
        f"logs {'tensorboard + ' if tracker else ''}{output / 'logs' / 'scalars.jsonl'}")  # fmt: skip
    result = StageResult(start_step=progress.step, output=output)
    scalars = (output / "logs").joinpath("scalars.jsonl")
    scalars.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    window: list[np.ndarray] = []
    rank = accelerator.process_index
    while progress.step < total:
        epoch, within = divmod(progress.micro, steps_per_epoch * train.grad_accum)
        order = np.random.default_rng(train.seed + epoch).permutation(len(items))
        global_batch = order[within * per_micro : (within + 1) * per_micro]
        mine = global_batch[rank * train.per_device_batch : (rank + 1) * train.per_device_batch]
        examples = collate([truncate(dataset[int(i)], train.max_length) for i in mine])
        with accelerator.accumulate(module):
            out = module(examples)
            accelerator.backward(out["loss"])
            window.append(np.array([float(out["loss"].detach()), float(out["lm"]), float(out["focal"])]))
            if accelerator.sync_gradients:
                if train.max_grad_norm:
                    accelerator.clip_grad_norm_(module.parameters(), train.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
        progress.micro += 1
        result.samples += per_micro
        if not accelerator.sync_gradients:
            continue
        progress.step += 1
        local = torch.tensor(np.mean(window, axis=0), device=accelerator.device)
        mean = accelerator.reduce(local, reduction="mean").cpu().numpy()
        window.clear()
        result.losses.append(float(mean[0]))
        lrs = {f"lr_{g.get('name', i)}": g["lr"] for i, g in enumerate(optimizer.param_groups)}
        record = {"step": progress.step, "loss": float(mean[0]), "lm": float(mean[1]), "focal": float(mean[2]), **lrs}
        if tracker:
            accelerator.log(record, step=progress.step)
        if main:
            with scalars.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        if progress.step % train.logging_steps == 0 or progress.step == total:
            elapsed = time.monotonic() - start
            rate = result.samples / max(elapsed, 1e-9)
            left = (total - progress.step) * train.grad_accum * per_micro / max(rate, 1e-9)
            say(f"step {progress.step}/{total} loss {mean[0]:.4f} (lm {mean[1]:.4f} focal {mean[2]:.4f}) "
                f"lr {optimizer.param_groups[0]['lr']:.2e} {rate:.2f} samples/s eta {left:.0f} s")  # fmt: skip
        if progress.step % train.save_steps == 0 and progress.step < total:
            _save_state(accelerator, output, progress.step, train.save_total_limit)
    result.seconds = time.monotonic() - start
    result.steps = progress.step
    _save_state(accelerator, output, progress.step, train.save_total_limit)
    accelerator.wait_for_everyone()
    if main:
        figures = {"steps": result.steps, "start_step": result.start_step, "processes": world,
                   "samples": result.samples, "seconds": round(result.seconds, 3),
                   "samples_per_s": round(result.samples_per_s, 3)}  # fmt: skip
        (output / "train_result.json").write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
        final = accelerator.unwrap_model(module).model
        export(final, output / "model", config, result)
        say(f"saved {output / 'model'} (merged, loader layout)")
    accelerator.wait_for_everyone()
    if tracker:
        accelerator.end_training()
    return result


def _fill_deepspeed(accelerator: Any, batch: int, accum: int, clip: float) -> None:
    """Resolve the ZeRO config's "auto" batch fields ourselves: accelerate reads them from a prepared DataLoader,
    and ours is not one (the per-rank batches come from the seeded global order). Needs CUDA: unverified here."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None:
        return
    ds = plugin.deepspeed_config
    values = {"train_micro_batch_size_per_gpu": batch, "gradient_accumulation_steps": accum,
              "train_batch_size": batch * accum * accelerator.num_processes, "gradient_clipping": clip}  # fmt: skip
    for key, value in values.items():
        if ds.get(key, "auto") == "auto":
            ds[key] = value


def _save_state(accelerator: Any, output: Path, step: int, limit: int | None) -> None:
    target = output / f"{CHECKPOINT_PREFIX}{step}"
    accelerator.save_state(str(target))
    if accelerator.is_main_process and limit:
        found = sorted((p for p in output.glob(f"{CHECKPOINT_PREFIX}*") if p.name[len(CHECKPOINT_PREFIX):].isdigit()),
                       key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))  # fmt: skip
        for old in found[:-limit]:
            shutil.rmtree(old, ignore_errors=True)


def export(model: ViSpeakForCausalLM, folder: Path, config: StageConfig, result: StageResult) -> Path:
    """Merge LoRA into the LLM and write the loader's layout (the live model is merged in place: call last)."""
    if config.train.gradient_checkpointing:
        model.llm.gradient_checkpointing_disable()
    merge_lora(model)
    model.eval()
    info = {
        "stage": config.stage,
        "config": config.source,
        "steps": result.steps,
        "last_loss": result.losses[-1] if result.losses else None,
    }
    return save_checkpoint(model, folder, info)


@torch.no_grad()
def mean_loss(model: ViSpeakForCausalLM, config: StageConfig, entries: list[dict[str, Any]]) -> float:
    """The stage's loss (LM, plus focal when the stage trains the head) averaged over every item, eval mode."""
    assert model.tokenizer is not None and model.config.vision is not None and model.config.audio is not None
    items = load_items(entries)
    dataset = RecipeDataset(items, model.tokenizer, model.config.vision, model.config.audio, config.media,
                            tokens_per_frame(model))  # fmt: skip
    module = StageModule(model, config.train.informative, config.train.informative_weight).eval()
    values = [float(module([truncate(dataset[i], config.train.max_length)])["loss"]) for i in range(len(items))]
    return float(np.mean(values))
