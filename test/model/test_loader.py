"""load_checkpoint: strict, safetensors only, settings from the encoder folders, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from vispeak_ros.model import CheckpointError, load_checkpoint
from vispeak_ros.model.tiny import tiny_model


def forward_once(model) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    agent = torch.randint(0, model.config.llm.vocab_size, (1, 9), generator=gen)
    user = torch.randn(1, 9, model.config.hidden_size, generator=gen)
    with torch.no_grad():
        return model(agent, user)


def same(ours, theirs) -> None:
    """Equal up to float summation order (loaded tensors can sit at other memory alignments)."""
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def error_of(path, **kwargs) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    return message


def rewrite_weights(root: Path, change) -> None:
    state = load_file(str(root / "model.safetensors"))
    change(state)
    save_file(state, str(root / "model.safetensors"))


def test_loaded_model_computes_what_the_saved_one_did(tiny_checkpoint):
    loaded = load_checkpoint(tiny_checkpoint)
    source = tiny_model(seed=3)
    same(forward_once(loaded), forward_once(source))
    assert not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    assert loaded.tokenizer is None
    assert any("tokenizer: none" in note for note in loaded.checkpoint_info.notes)


def test_sharded_checkpoint_with_index_loads_the_same(tiny_copy):
    state = load_file(str(tiny_copy / "model.safetensors"))
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, part in shards.items():
        save_file({k: state[k] for k in part}, str(tiny_copy / name))
    (tiny_copy / "model.safetensors").unlink()
    index = {"weight_map": {k: name for name, part in shards.items() for k in part}}
    (tiny_copy / "model.safetensors.index.json").write_text(json.dumps(index))
    model = load_checkpoint(tiny_copy)
    assert len(model.checkpoint_info.weight_files) == 2
    same(forward_once(model), forward_once(tiny_model(seed=3)))


def test_dtype_converts_floating_weights_only(tiny_checkpoint):
    model = load_checkpoint(tiny_checkpoint, dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16
    bn = model.audio_encoder.adpter.bn2
    assert bn.num_batches_tracked.dtype == torch.int64 and bn.running_mean.dtype == torch.bfloat16


def test_relative_encoder_folders_resolve_against_the_checkpoint(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = load_checkpoint(tiny_checkpoint)
    assert model.checkpoint_info.vision_folder == tiny_checkpoint / "InternViT-tiny"
    assert model.checkpoint_info.audio_folder == tiny_checkpoint / "audio-encoder-tiny"


def test_encoder_folders_given_as_arguments(tiny_copy, tmp_path):
    elsewhere = tmp_path / "encoders"
    elsewhere.mkdir()
    vision = Path(shutil.move(tiny_copy / "InternViT-tiny", elsewhere / "InternViT-300M-448px"))
    audio = Path(shutil.move(tiny_copy / "audio-encoder-tiny", elsewhere / "audio-encoder"))
    assert "vision setting num_attention_heads" in error_of(tiny_copy)
    model = load_checkpoint(tiny_copy, vision_tower=vision, audio_encoder=audio)
    assert model.checkpoint_info.audio_folder == audio


def test_a_pickle_left_in_the_audio_folder_is_never_opened(tiny_copy):
    (tiny_copy / "audio-encoder-tiny" / "final.pt").write_bytes(b"not a pickle: opening this would fail")
    load_checkpoint(tiny_copy)


def test_missing_key(tiny_copy):
    rewrite_weights(tiny_copy, lambda s: s.pop("model.norm.weight"))
    assert "1 missing key(s): model.norm.weight" in error_of(tiny_copy)


def test_unexpected_key(tiny_copy):
    rewrite_weights(tiny_copy, lambda s: s.__setitem__("model.extra.weight", torch.zeros(2)))
    assert "1 unexpected key(s): model.extra.weight" in error_of(tiny_copy)


def test_wrong_shape(tiny_copy):
    rewrite_weights(tiny_copy, lambda s: s.__setitem__("informative_head.2.weight", torch.zeros(1, 3)))
    assert "shape mismatch(es): informative_head.2.weight checkpoint [1, 3] vs model [1, 16]" in error_of(tiny_copy)


def test_a_bin_pickle_offered_is_refused_unopened(tmp_path):
    weights = tmp_path / "pytorch_model.bin"
    weights.write_bytes(b"\x80\x04 arbitrary bytes")
    assert "refused" in error_of(weights) and "pickle" in error_of(weights)
    (tmp_path / "config.json").write_text("{}")
    assert "pytorch_model.bin refused (pickle)" in error_of(tmp_path)


def test_a_plain_vita_checkpoint_is_refused(tiny_copy):
    def strip(state):
        for key in [k for k in state if k.startswith(("model.combination.", "informative_head."))]:
            state.pop(key)

    rewrite_weights(tiny_copy, strip)
    config = json.loads((tiny_copy / "config.json").read_text())
    config.pop("combination")
    config["model_type"] = "vita-Qwen2"
    (tiny_copy / "config.json").write_text(json.dumps(config))
    assert "plain VITA-1.5 checkpoint" in error_of(tiny_copy)


def test_a_missing_encoder_setting_is_named_with_its_file(tiny_copy):
    path = tiny_copy / "audio-encoder-tiny" / "train.yaml"
    train = yaml.safe_load(path.read_text())
    del train["encoder_conf"]["para_conf"]["transformer"]["transformer-attention-heads"]
    path.write_text(yaml.safe_dump(train))
    message = error_of(tiny_copy)
    assert "transformer-attention-heads" in message and str(path) in message


def test_a_missing_vision_setting_is_named_with_its_file(tiny_copy):
    path = tiny_copy / "InternViT-tiny" / "config.json"
    config = json.loads(path.read_text())
    del config["num_attention_heads"]
    path.write_text(json.dumps(config))
    message = error_of(tiny_copy)
    assert "num_attention_heads" in message and str(path) in message


def test_a_missing_directory(tmp_path):
    assert "checkpoint directory not found" in error_of(tmp_path / "nowhere")


def test_a_directory_without_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert "neither model.safetensors nor model.safetensors.index.json" in error_of(tmp_path)


def test_official_tiny_checkpoint_loads_with_encoder_settings_from_its_folders(reference):
    model = load_checkpoint(reference.model_dir)
    assert model.config.vision.num_attention_heads == 4
    assert model.config.audio.attention_heads == 2 and model.config.audio.chunk_size == 4
    assert model.config.audio.fbank.num_mel_bins == 80
    assert os.fspath(model.checkpoint_info.path) == os.fspath(reference.model_dir)


def test_a_corrupt_weights_file(tiny_copy):
    (tiny_copy / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    assert "not a readable safetensors file" in error_of(tiny_copy)
