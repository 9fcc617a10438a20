"""A tiny base checkpoint and tiny data in every official format, for tests and the benchmark (CPU, seconds).

The data are real files in the official layouts: mp4 clips with an AAC audio track, a PNG, a WAV, and annotation
JSON lists for offline, streaming (question answering and proactive), audio-proactive (text and spoken questions)
and Visual Reference (`no_visual_proactive`) entries. The configs are the shipped stage YAMLs with small sizes.
"""

from __future__ import annotations

import json
import wave
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vispeak_ros.model.vispeak import ViSpeakForCausalLM
from vispeak_ros.model.writer import save_checkpoint
from vispeak_ros.training.recipe.stages import LoraSpec, StageConfig, load_config
from vispeak_ros.training.tokenizer_build import build_tokenizer, save_tokenizer
from vispeak_ros.training.trainer import Recipe, demo_config

FPS = 2
RATE = 16000
SECONDS = 4

OFFLINE = [
    {"image": "ball.png", "conversations": [
        {"from": "human", "value": "<image>\nWhat colour is the ball?"},
        {"from": "gpt", "value": "The ball is red."}]},
    {"video": "clip.mp4", "audio": ["question.wav"], "conversations": [
        {"from": "human", "value": "<video><audio>"},
        {"from": "gpt", "value": "A person waves at you."}]},
    {"conversations": [
        {"from": "human", "value": "Say hello."}, {"from": "gpt", "value": "Hello there."},
        {"from": "human", "value": "Again please."}, {"from": "gpt", "value": "Hello again."}]},
]  # fmt: skip
STREAMING = [
    {"video": "clip.mp4", "proactive": False, "conversations": [
        {"from": "human", "value": "What is on the table?", "time": 1.0},
        {"from": "gpt", "value": "A red ball.", "time": 1.5}]},
    {"video": "clip.mp4", "proactive": True, "conversations": [
        {"from": "gpt", "value": "Hello! How can I help you?", "time": 2.5, "timespan": [1.0, 3.0]}]},
]  # fmt: skip
GESTURE = [
    {"video": "clip.mp4", "conversations": [
        {"from": "human", "value": "Tell me a joke.", "time": 0.0},
        {"from": "gpt", "value": "Why did the robot cross the road?", "time": 0.1},
        {"from": "gpt", "value": "Nice thumbs up!", "time": 2.2, "timespan": [1.0, 3.0]}]},
    {"video": "clip.mp4", "use_audio": True, "conversations": [
        {"from": "human", "value": "Tell me a joke.", "time": 1.0},
        {"from": "gpt", "value": "Why did the robot cross the road?", "time": 1.2}]},
]  # fmt: skip
REFERENCE = [
    {"video": "clip.mp4", "conversations": [
        {"from": "human", "value": "What am I pointing at?", "time": 2.0},
        {"from": "gpt", "value": "That is the red ball.", "time": 2.1}]},
]  # fmt: skip


def texts() -> list[str]:
    """Every string of the tiny data (the tiny tokenizer gets a word for each)."""
    out = []
    for items in (OFFLINE, STREAMING, GESTURE, REFERENCE):
        for item in items:
            out += [t["value"].replace("<image>", " ").replace("<video>", " ").replace("<audio>", " ")
                    for t in item["conversations"]]  # fmt: skip
    return out


def write_clip(path: Path, seconds: int = SECONDS, fps: int = FPS, size: int = 64, audio: bool = True) -> Path:
    """An mp4 (MPEG-4 video, AAC 16 kHz mono audio): a red square that appears in seconds 1-3, a tone."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = size, size, "yuv420p"
        sound = container.add_stream("aac", rate=RATE) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for i in range(seconds * fps):
            img = np.full((size, size, 3), 40, np.uint8)
            if 1.0 <= i / fps <= 3.0:
                img[size // 4 : size // 2, size // 4 : size // 2] = (220, 30, 30)
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            tone = (0.1 * np.sin(np.arange(seconds * RATE) * 2 * np.pi * 220 / RATE)).astype(np.float32)
            for start in range(0, len(tone), 1024):
                frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="flt", layout="mono")
                frame.sample_rate, frame.pts = RATE, start
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return path


def write_data(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Media and annotation files; returns dataset entries per stage (0 and 1 offline, 2 streaming + offline,
    3 ViSpeak-Instruct-like: streaming proactive, audio-proactive, Visual Reference, offline)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    write_clip(folder / "clip.mp4")
    img = np.full((96, 128, 3), 200, np.uint8)
    img[30:60, 40:80] = (220, 30, 30)
    Image.fromarray(img).save(folder / "ball.png")
    voice = (0.2 * np.sin(np.arange(int(1.5 * RATE)) * 0.07) * 32767).astype("<i2")
    with wave.open(str(folder / "question.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(voice.tobytes())
    files = {"offline": OFFLINE, "streaming": STREAMING, "gesture": GESTURE, "reference": REFERENCE}
    for name, items in files.items():
        (folder / f"{name}.json").write_text(json.dumps(items, indent=1), encoding="utf-8")
    media = {"video_folder_path": str(folder), "image_folder_path": str(folder), "audio_folder_path": str(folder)}
    offline = {"chat_path": str(folder / "offline.json"), **media}
    streaming = {"chat_path": str(folder / "streaming.json"), "streaming": True, **media}
    gesture = {"chat_path": str(folder / "gesture.json"), "streaming": True, "audio_proactive": True, **media}
    reference = {"chat_path": str(folder / "reference.json"), "streaming": True, "audio_proactive": True,
                 "no_visual_proactive": True, **media}  # fmt: skip
    return {"0": [offline], "1": [offline], "2": [streaming, offline], "3": [streaming, gesture, reference, offline]}


def write_base(folder: Path, seed: int = 0, hidden: int = 32) -> Path:
    """A freshly initialised tiny ViSpeak in the loader's layout (what a stage starts from)."""
    torch.manual_seed(seed)
    tokenizer = save_tokenizer(build_tokenizer(texts()), folder)
    recipe = Recipe(hidden_size=hidden, num_layers=2, num_heads=2, num_kv_heads=1, vision_hidden=16, vision_layers=1)
    model = ViSpeakForCausalLM(demo_config(recipe, len(tokenizer)))
    model.tokenizer = tokenizer
    save_checkpoint(model, folder, {"tiny": True})
    return folder


def tiny_config(
    training_dir: Path, stage: int, base: Path, *, max_steps: int = 4, batch: int = 1, accum: int = 1, **train: Any
) -> StageConfig:
    """The shipped stage YAML with tiny sizes: LoRA r 4, a larger LR, fp32, no workers, checkpoints every step."""
    name = "stage0_align.yaml" if stage == 0 else f"stage{stage}.yaml"
    config = load_config(training_dir / name, stage)
    config.model = replace(config.model, init_from=str(base), vision_tower=None, audio_encoder=None)
    if config.lora is not None:
        config.lora = LoraSpec(r=4, alpha=8, dropout=config.lora.dropout, targets=config.lora.targets)
    defaults = {"max_steps": max_steps, "per_device_batch": batch, "grad_accum": accum, "lr": 3e-3,
                "projector_lr": None if config.train.projector_lr is None else 1e-3, "mixed_precision": "no",
                "gradient_checkpointing": False, "num_workers": 0, "save_steps": 1, "save_total_limit": None,
                "threads": 1, "logging_steps": 1}  # fmt: skip
    config.train = replace(config.train, **{**defaults, **train})
    return config
