"""The three-stage recipe on a tiny model: the shipped configs carry the paper's hyper-parameters, each stage freezes
what the official scripts freeze, a few steps of every stage reduce its loss and save a merged checkpoint the loader
reads, LoRA merging keeps the outputs, a resumed run continues with the same losses, and the official stage-3
formats load from real files."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vispeak_ros.model.errors import CheckpointError
from vispeak_ros.model.loader import load_checkpoint
from vispeak_ros.training.recipe import tiny
from vispeak_ros.training.recipe.dataset import RecipeDataset, load_items
from vispeak_ros.training.recipe.formats import check_runs
from vispeak_ros.training.recipe.lora import merge_lora
from vispeak_ros.training.recipe.run import StageModule, mean_loss, prepare_model, run_stage, tokens_per_frame
from vispeak_ros.training.recipe.stages import LORA_TARGETS, load_config, param_groups

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAINING = REPO_ROOT / "training"
QUIET = lambda _line: None  # noqa: E731


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("recipe")
    return {"entries": tiny.write_data(root / "data"), "base": tiny.write_base(root / "base"), "root": root}


def test_shipped_configs_carry_the_paper_recipe():
    configs = {s: load_config(TRAINING / ("stage0_align.yaml" if s == 0 else f"stage{s}.yaml"), s) for s in range(4)}
    for stage, config in configs.items():
        t = config.train
        assert (t.weight_decay, t.warmup_ratio, t.max_length, t.mixed_precision) == (0.0, 0.03, 6200, "bf16")
        assert t.gradient_checkpointing and t.max_grad_norm == 1.0
        assert "audio_adapter" in config.trainable if stage == 0 else "audio_adapter" not in config.trainable
    align = configs[0]
    assert (align.train.lr, align.train.projector_lr, align.lora) == (5e-4, None, None)
    assert (align.train.per_device_batch, align.train.grad_accum) == (4, 4)
    for stage in (1, 2, 3):
        config = configs[stage]
        assert config.lora is not None
        assert (config.lora.r, config.lora.alpha, config.lora.dropout) == (128, 256, 0.05)
        assert sorted(config.lora.targets) == sorted(LORA_TARGETS)
        assert (config.train.lr, config.train.projector_lr) == (1e-4, 1e-5)
        assert (config.train.per_device_batch, config.train.grad_accum) == (2, 4)
    assert [configs[s].train.epochs for s in range(4)] == [1, 1, 1, 2]
    assert [configs[s].train.informative for s in range(4)] == [False, False, True, True]
    assert configs[2].model.fresh == ["informative_head"] and configs[3].media.min_frames == 8
    assert [configs[s].model.pooling_size for s in range(4)] == [1, 1, 2, 2]


def trainable_parts(model) -> set[str]:
    parts = set()
    for name, param in model.named_parameters():
        if param.requires_grad:
            parts.add("lora" if "lora_" in name else name.split(".")[0] + (".adpter" if ".adpter." in name else ""))
    return parts


def test_each_stage_freezes_what_the_official_scripts_freeze(world):
    expected = {
        0: {"mm_projector", "audio_encoder.adpter", "fusion"},
        1: {"mm_projector", "fusion", "lora"},
        2: {"mm_projector", "fusion", "informative_head", "lora"},
        3: {"mm_projector", "fusion", "informative_head", "lora"},
    }
    for stage, parts in expected.items():
        model = prepare_model(tiny.tiny_config(TRAINING, stage, world["base"]), torch.device("cpu"), QUIET)
        assert trainable_parts(model) == parts, stage
        assert not model.vision_tower.training and not model.audio_encoder.encoder.training
        groups = {g["name"]: g for g in param_groups(model, 1e-4, 1e-5, 0.0)}
        projector = {id(p) for p in groups.get("projector", {"params": []})["params"]}
        assert projector == {id(p) for p in model.mm_projector.parameters()} | (
            {id(p) for p in model.audio_encoder.adpter.parameters()} if stage == 0 else set()
        )


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_a_few_steps_of_each_stage_reduce_its_loss_and_save_a_loadable_model(world, stage):
    config = tiny.tiny_config(TRAINING, stage, world["base"], max_steps=12, lr=2e-2, warmup_ratio=0.0)
    if config.train.projector_lr is not None:
        config.train = replace(config.train, projector_lr=1e-2)
    entries = world["entries"][str(stage)]
    before = mean_loss(prepare_model(config, torch.device("cpu"), QUIET), config, entries)
    result = run_stage(config, world["root"] / f"stage{stage}", entries=entries, log=QUIET)
    assert result.steps == 12 and len(result.losses) == 12
    trained = load_checkpoint(world["root"] / f"stage{stage}" / "model")  # merged, strict, the loader's layout
    assert not any("lora" in k for k in trained.state_dict())
    after = mean_loss(trained, config, entries)
    assert after < before - 0.03, (before, after)  # stage 0 moves least: its LLM is frozen (random here)


def test_lora_merge_gives_the_outputs_of_the_unmerged_model(world):
    config = tiny.tiny_config(TRAINING, 2, world["base"])
    model = prepare_model(config, torch.device("cpu"), QUIET)
    torch.manual_seed(3)
    with torch.no_grad():
        for name, param in model.llm.named_parameters():
            if "lora_B" in name:  # B starts at zero: give the adapters something to merge
                param.normal_(0, 0.2)
    module = StageModule(model, True, 1.0).eval()
    dataset = RecipeDataset(load_items(world["entries"]["3"]), model.tokenizer, model.config.vision,
                            model.config.audio, config.media, tokens_per_frame(model))  # fmt: skip
    example = dataset[0]
    s = example.rows.sample
    with torch.no_grad():
        user = model.embed_user_stream(s.user_ids, module._images(example), module._audio(example) or None)
        unmerged = model(s.agent_ids[None], user[None])
        base_logits = load_checkpoint(world["base"])(s.agent_ids[None], user[None])[0]
        merge_lora(model)
        merged = model(s.agent_ids[None], user[None])
    assert not any("lora" in n for n, _ in model.named_parameters())
    assert (unmerged[0] - base_logits).abs().max() > 1e-2  # the adapters do change the outputs
    assert torch.allclose(unmerged[0], merged[0], atol=1e-5)
    assert torch.allclose(unmerged[1], merged[1], atol=1e-5)


def test_resume_continues_from_the_saved_step_with_the_same_loss(world):
    config = tiny.tiny_config(TRAINING, 2, world["base"], max_steps=4)  # LoRA dropout on: RNG must come back too
    entries = world["entries"]["2"]
    straight = run_stage(config, world["root"] / "straight", entries=entries, log=QUIET)
    resumed_dir = world["root"] / "resumed"
    shutil.copytree(world["root"] / "straight", resumed_dir)
    for step in (3, 4):
        shutil.rmtree(resumed_dir / f"checkpoint-{step}")
    shutil.rmtree(resumed_dir / "model")
    lines = []
    resumed = run_stage(config, resumed_dir, entries=entries, resume=True, log=lines.append)
    assert any("resumed from" in line and "at step 2" in line for line in lines)
    assert resumed.start_step == 2 and resumed.steps == 4
    assert resumed.losses == pytest.approx(straight.losses[2:], abs=1e-6)
    logged = [json.loads(line) for line in (resumed_dir / "logs" / "scalars.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [1, 2, 3, 4, 3, 4]  # the straight run's lines, then the resumed ones


def test_stage3_items_in_the_official_format_load_from_files(world):
    model = load_checkpoint(world["base"])
    config = tiny.tiny_config(TRAINING, 3, world["base"])
    items = load_items(world["entries"]["3"])
    assert sorted({i.kind for i in items}) == ["audio_proactive", "offline", "streaming"]
    dataset = RecipeDataset(items, model.tokenizer, model.config.vision, model.config.audio, config.media, 64)
    for index in range(len(dataset)):
        example = dataset[index]
        check_runs(example.rows)
        frames = sum(1 for kind, _ in example.rows.images if kind == "frame")
        assert len(example.frames) == frames
        assert len(example.fbank) == len(example.rows.audios)
        if items[index].kind != "offline":
            assert len(example.frames) == 8  # stage 3: at least 8 frames (minimal_image_ratio 2) of the 4 s clip


def test_stage0_starts_from_a_plain_vita_checkpoint_with_a_fresh_fusion_gate(world, tmp_path):
    from safetensors.torch import load_file, save_file

    vita = tmp_path / "vita"
    shutil.copytree(world["base"], vita)
    state = load_file(vita / "model.safetensors")
    kept = {k: v for k, v in state.items() if not k.startswith(("model.combination.", "informative_head."))}
    save_file(kept, str(vita / "model.safetensors"), metadata={"format": "pt"})
    config = tiny.tiny_config(TRAINING, 0, vita)
    assert sorted(config.model.fresh) == ["fusion", "informative_head"]
    model = prepare_model(config, torch.device("cpu"), QUIET)
    assert torch.equal(model.mm_projector[0].weight, state["model.mm_projector.0.weight"])
    assert model.informative_head is not None and model.fusion.gate is not None
    config.model = replace(config.model, fresh=[])
    with pytest.raises(CheckpointError, match=r"plain VITA-1\.5"):
        prepare_model(config, torch.device("cpu"), QUIET)
