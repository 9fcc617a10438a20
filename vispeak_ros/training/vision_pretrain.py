"""Stage 0 of the demo recipe: teach the tiny InternViT to see the gesture world, as InternViT's own pre-training
does for the real model, before it is frozen for the streaming stage.

A randomly initialised tower keeps too little of a frame for a 64-wide LLM to read: a linear probe on its pooled
tokens tells the person's pose on 0.45 of held-out frames. The world knows what every pixel shows, so the tower is
trained on dense targets at the grid of tokens that the projector reads (8 x 8): a token on the person learns which
part it shows (body, waving arm, goodbye arms, thumb, palm, pointing arm, fallen body), a token on an object its
colour and shape, and the mean token the frame's pose (standing, wave, goodbye, thumbs up, palm, point, fallen). The
linear heads that read them during this stage are dropped afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vispeak_ros.model.processors import preprocess_images
from vispeak_ros.model.vision import pool_tokens
from vispeak_ros.model.vispeak import ViSpeakForCausalLM
from vispeak_ros.training import render, world

POSES: tuple[str, ...] = ("standing", "wave", "goodbye", "thumb", "palm", "point", "fallen")
# What a token shows of the person: its body as when standing, or the part a pose moved. A raised arm is asked to
# tell a wave (one arm) from a goodbye (two): with one shared class the LLM took waves for goodbyes.
PARTS: tuple[str, ...] = ("background", "body", "wave", "goodbye", "thumb", "palm", "point", "fallen")
OBJECTS: tuple[str, ...] = world.object_names()
FALLEN_AFTER = 0.6  # share of a fall after which the body counts as down (before: in between, no target)
COVER = 0.08  # a token is on a drawn thing when that covers more than this share of it; a sliver has no target
IGNORE = -1


def pose_index(stream: world.Stream, t: float) -> int:
    """What the person shows at stream time t (index into POSES), IGNORE while an arm or the body is moving."""
    for action in stream.actions:
        if action.kind == "fall":
            if t >= action.start + FALLEN_AFTER * action.fall_s:
                return POSES.index("fallen")
            if t >= action.start:
                return IGNORE
            continue
        if action.start <= t <= action.end + world.RAMP_S:
            if action.start + world.RAMP_S <= t <= action.end:
                return POSES.index(action.kind)  # wave, goodbye, thumb, palm, point
            return IGNORE
    return POSES.index("standing")


def _drawn(size: tuple[int, int], draw: Callable[[np.ndarray], None]) -> np.ndarray:
    """Bool [H, W]: the pixels `draw` paints (drawn on black and on white, they agree only where it painted)."""
    width, height = size
    dark, light = np.zeros((height, width, 3), np.uint8), np.full((height, width, 3), 255, np.uint8)
    draw(dark)
    draw(light)
    return (dark == light).all(-1)


def _cover(mask: np.ndarray, grid: int) -> np.ndarray:
    """Share of each token's cell [grid, grid] that the mask covers (the world's training frames are square, so the
    processor's centre crop keeps all of them)."""
    return cv2.resize(mask.astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA)


def token_targets(stream: world.Stream, t: float, grid: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(pose target, object target) per token, int64 [grid * grid] each, or None while the pose is changing.

    Pose target (index into PARTS): background off the person, body where the person looks as when standing, the
    pose's part where the pose moved it (the raised or pointing arm, the whole fallen body): the evidence for a
    gesture is local, so that is where a token is asked to name it. Object target: 0 off the objects, else 1 + the
    index in OBJECTS. Tokens that a drawing only grazes get IGNORE."""
    pose = pose_index(stream, t)
    if pose == IGNORE:
        return None
    scene = stream.scene

    def person(body: render.Pose) -> np.ndarray:
        return _drawn(scene.size, lambda image: render.draw_person(image, scene.person, body))

    now = person(world.pose_at(t, stream.actions, scene))
    moved = _cover(now & ~person(world.pose_at(t, (), scene)), grid)
    on_person = _cover(now, grid)
    poses = np.where(on_person > COVER, 1, np.where(on_person > 0, IGNORE, 0))
    part = PARTS.index("body" if POSES[pose] == "standing" else POSES[pose])
    poses = np.where(moved > COVER, part, np.where((moved > 0) & (poses == 1), IGNORE, poses)).astype(np.int64)
    objects = np.zeros((grid, grid), np.int64)
    if scene.objects_visible:
        for obj in scene.objects:
            cover = _cover(_drawn(scene.size, lambda image, o=obj: render.draw_object(image, o)), grid)
            objects[cover > COVER] = 1 + OBJECTS.index(obj.name)
            objects[(cover > 0) & (cover <= COVER) & (objects == 0)] = IGNORE
    return poses.reshape(-1), objects.reshape(-1)


@dataclass
class FrameSet:
    """Frames (references into the streams, one per second) with their pose and per-token targets."""

    frames: list[np.ndarray]
    poses: np.ndarray  # [N] pose index
    pose_tokens: torch.Tensor  # [N, grid^2]
    object_tokens: torch.Tensor  # [N, grid^2]


def collect(streams: Sequence[world.Stream], grid: int) -> FrameSet:
    """The frame at each whole second of every stream whose pose is settled."""
    frames, poses, pose_tokens, object_tokens = [], [], [], []
    for stream in streams:
        for second in range(int(stream.duration_s)):
            targets = token_targets(stream, float(second), grid)
            if targets is None:
                continue
            frames.append(stream.frame_at(float(second)))
            poses.append(pose_index(stream, float(second)))
            pose_tokens.append(targets[0])
            object_tokens.append(targets[1])
    return FrameSet(
        frames, np.array(poses), torch.from_numpy(np.stack(pose_tokens)), torch.from_numpy(np.stack(object_tokens))
    )


def pooled_grid(model: ViSpeakForCausalLM) -> int:
    """Side of the token grid the projector reads (8 for 448 px, patch 14, pixel shuffle, pooling 2)."""
    return round(model.config.tokens_per_frame**0.5)


def _cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the targets that are not IGNORE; 0 when none is (a batch without a visible object)."""
    keep = targets != IGNORE
    if not bool(keep.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[keep], targets[keep])


class TokenHeads(torch.nn.Module):
    """The linear read-outs of this stage (not part of the checkpoint): per token pose and object, and the frame's
    pose from the mean token (which asks every token to carry a little of the whole picture: one raised arm is a
    wave, two are a goodbye)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.pose = torch.nn.Linear(width, len(PARTS))
        self.object = torch.nn.Linear(width, 1 + len(OBJECTS))
        self.frame = torch.nn.Linear(width, len(POSES))

    def loss(
        self, tokens: torch.Tensor, frame_poses: torch.Tensor, poses: torch.Tensor, objects: torch.Tensor
    ) -> tuple[torch.Tensor, float]:
        """(frame pose + token pose + object cross-entropy, token pose accuracy on the person) of a batch of pooled
        tokens [N, T, C] with targets [N], [N, T], [N, T]."""
        pose_logits = self.pose(tokens).flatten(0, 1)
        loss = _cross_entropy(pose_logits, poses.flatten())
        loss = loss + _cross_entropy(self.object(tokens).flatten(0, 1), objects.flatten())
        loss = loss + F.cross_entropy(self.frame(tokens.mean(1)), frame_poses)
        on_person = poses.flatten() > 0
        hits = (pose_logits.argmax(-1)[on_person] == poses.flatten()[on_person]).float()
        return loss, float(hits.mean()) if len(hits) else 0.0


def recolour(
    frames: list[np.ndarray], objects: torch.Tensor, rng: np.random.Generator, share: float
) -> tuple[list[np.ndarray], torch.Tensor]:
    """Swap the colour channels (and maybe invert) of a `share` of the frames, whose object targets then become
    IGNORE (their colours no longer name them): walls and clothes of colours the training palette lacks then look
    familiar, so the pose is read from shapes, not from the few training backgrounds."""
    out, objects = [], objects.clone()
    for i, frame in enumerate(frames):
        if rng.random() < share:
            frame = frame[..., rng.permutation(3)]
            frame = 255 - frame if rng.random() < 0.5 else np.ascontiguousarray(frame)
            objects[i] = IGNORE
        out.append(frame)
    return out, objects


def pretrain_vision(
    model: ViSpeakForCausalLM,
    streams: Sequence[world.Stream],
    steps: int,
    lr: float = 2e-3,
    batch: int = 16,
    seed: int = 0,
    augment: float = 0.5,
    log: Callable[[str], None] = print,
    log_every: int = 100,
) -> dict[str, float]:
    """Train the vision tower in place on the streams' frames (each batch draws the poses evenly, so the rare
    gestures count as much as standing), then freeze it again. Returns the last 100 steps' loss and accuracy."""
    tower = model.vision_tower
    assert tower is not None and model.config.vision is not None
    data = collect(streams, pooled_grid(model))
    by_pose = [np.flatnonzero(data.poses == k) for k in range(len(POSES))]
    present = [k for k, rows in enumerate(by_pose) if len(rows)]
    log(f"vision stage: {len(data.frames)} frames, " + ", ".join(f"{POSES[k]} {len(by_pose[k])}" for k in present))
    generator = torch.Generator().manual_seed(seed)
    heads = TokenHeads(4 * model.config.vision.hidden_size)
    torch.nn.init.normal_(heads.pose.weight, std=0.02, generator=generator)
    torch.nn.init.normal_(heads.object.weight, std=0.02, generator=generator)
    torch.nn.init.normal_(heads.frame.weight, std=0.02, generator=generator)
    tower.requires_grad_(True)
    tower.train()
    params = [*tower.parameters(), *heads.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    rng = np.random.default_rng(seed)
    recent: list[tuple[float, float]] = []
    start = time.monotonic()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + np.cos(np.pi * step / steps))
        rows = np.array([rng.choice(by_pose[k]) for k in rng.choice(present, batch)])
        frames, objects = recolour([data.frames[i] for i in rows], data.object_tokens[rows], rng, augment)
        pixels = preprocess_images(frames, model.config.vision)
        tokens = pool_tokens(model.vision_features(pixels), model.config.pooling_size)
        loss, accuracy = heads.loss(tokens, torch.from_numpy(data.poses[rows]), data.pose_tokens[rows], objects)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        recent = [*recent[-99:], (float(loss.detach()), accuracy)]
        if (step + 1) % log_every == 0 or step + 1 == steps:
            mean_loss, mean_accuracy = np.mean(recent, axis=0)
            rate = (step + 1) / (time.monotonic() - start)
            log(
                f"vision step {step + 1}/{steps} loss {mean_loss:.4f} pose accuracy on the person {mean_accuracy:.2f} "
                f"{rate * batch:.0f} frames/s eta {(steps - step - 1) / rate:.0f} s"
            )
    tower.requires_grad_(False)
    tower.eval()
    mean_loss, mean_accuracy = np.mean(recent, axis=0) if recent else (float("nan"), float("nan"))
    return {"vision_loss": round(float(mean_loss), 4), "vision_pose_accuracy": round(float(mean_accuracy), 3)}
