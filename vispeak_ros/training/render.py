"""Drawing for the synthetic gesture world: backgrounds, coloured objects, a moving distractor and a stick person.

Everything is cv2 primitives on a uint8 RGB canvas (anti-aliased, sub-pixel coordinates), so a 160x120 frame costs
well under a millisecond. Geometry here is in pixels; world.py samples it in size-independent units and animates it.

The person is built in *body coordinates*: x to the image right, y up, feet centre at (0, 0), height 1. A `Pose`
places both arms (elbow and hand points plus a hand shape) in those coordinates; `tilt` rotates the whole body about
the feet (a fall) and `shift` slides it sideways in body heights (so a collapsing body lies about where it stood).
Each gesture is made to read in a single low-resolution frame: a waving hand is high above the head, goodbye raises
both hands, a thumbs-up is a small fist with a thumb beside the chest, a raised palm is a large open hand in front of
the chest, a pointing arm is straight towards its object, a fallen person lies horizontally.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

Colour = tuple[int, int, int]
Point = tuple[float, float]

_SHIFT = 4  # cv2 fixed-point bits: coordinates are drawn with 1/16 pixel precision
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA

# Saturated, mutually distant colours: they are the words of the visual-reference answers.
OBJECT_COLOURS: dict[str, Colour] = {
    "red": (215, 35, 35),
    "green": (35, 165, 55),
    "blue": (35, 75, 215),
    "yellow": (240, 205, 25),
}
OBJECT_SHAPES: tuple[str, ...] = ("ball", "box", "cone")

# Muted wall/floor colours, far from the object colours and from skin. Train and held-out palettes share no colour.
BACKGROUND_PALETTES: dict[str, dict[str, Colour]] = {
    "train": {
        "beige": (214, 204, 180),
        "light_gray": (196, 198, 200),
        "pale_blue": (176, 196, 214),
        "sage": (168, 184, 158),
        "walnut": (120, 92, 70),
        "slate": (88, 98, 112),
        "lavender": (190, 180, 208),
        "cream": (236, 232, 214),
    },
    "heldout": {
        "mint": (186, 222, 200),
        "charcoal": (60, 62, 68),
        "dusty_rose": (196, 150, 160),
        "sky": (146, 184, 232),
        "olive": (112, 114, 72),
        "teal_gray": (104, 140, 142),
    },
}
BACKGROUND_KINDS: tuple[str, ...] = ("solid", "vertical_gradient", "wall_floor", "stripes", "checker_floor")

SKIN_TONES: tuple[Colour, ...] = ((241, 194, 160), (224, 172, 130), (198, 134, 90), (141, 85, 54), (95, 60, 40))
TOP_COLOURS: tuple[Colour, ...] = (
    (120, 60, 160),  # purple
    (30, 130, 130),  # teal
    (230, 120, 30),  # orange
    (30, 40, 100),  # navy
    (120, 30, 50),  # maroon
    (235, 235, 235),  # white
    (35, 35, 35),  # black
    (220, 110, 170),  # pink
    (130, 85, 50),  # brown
    (90, 110, 40),  # olive green
    (120, 120, 120),  # gray
)
BOTTOM_COLOURS: tuple[Colour, ...] = ((40, 60, 110), (30, 30, 30), (170, 150, 100), (90, 90, 95), (100, 70, 45))
HAIR_COLOURS: tuple[Colour, ...] = ((25, 20, 20), (90, 60, 35), (200, 170, 90), (150, 150, 150), (150, 60, 30))
DISTRACTOR_COLOURS: tuple[Colour, ...] = ((245, 245, 245), (20, 20, 20), (140, 140, 140), (150, 110, 200))

# Body landmarks in body coordinates (height 1).
SHOULDER_R: Point = (0.11, 0.77)
SHOULDER_L: Point = (-0.11, 0.77)
HEAD: Point = (0.0, 0.9)
HEAD_RADIUS = 0.075
ARM_LENGTH = 0.36  # shoulder to hand, straight
_TORSO = ((-0.13, 0.8), (0.13, 0.8), (0.1, 0.45), (-0.1, 0.45))
_LEGS = (((-0.055, 0.47), (-0.07, 0.24), (-0.08, 0.02)), ((0.055, 0.47), (0.07, 0.24), (0.08, 0.02)))
_LIE_LIFT = 0.13  # a lying body is raised by this much (body heights) so its back rests on the floor line


def _fixed(p: Point) -> tuple[int, int]:
    return round(p[0] * _ONE), round(p[1] * _ONE)


def mix(a: Colour, b: Colour, w: float) -> Colour:
    """Colour a blended towards b by w in [0, 1]."""
    return tuple(round(x + (y - x) * w) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


# ---- background -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Background:
    """A wall (and floor) in two palette colours; `horizon` is the wall/floor line as a fraction of the height."""

    kind: str
    wall: str
    floor: str
    split: str
    horizon: float
    period: float = 0.12  # stripe / tile size as a fraction of the height

    @property
    def colours(self) -> tuple[str, str]:
        return self.wall, self.floor

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.wall}/{self.floor}"


def render_background(bg: Background, size: tuple[int, int]) -> np.ndarray:
    """The background as an RGB uint8 (H, W, 3) array."""
    width, height = size
    palette = BACKGROUND_PALETTES[bg.split]
    wall = np.array(palette[bg.wall], np.float32)
    floor = np.array(palette[bg.floor], np.float32)
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height
    xs = (np.arange(width, dtype=np.float32) + 0.5) / height
    below = (ys >= bg.horizon)[:, None, None]
    if bg.kind == "solid":
        image = np.broadcast_to(wall, (height, width, 3))
    elif bg.kind == "vertical_gradient":
        w = ys[:, None, None]
        image = np.broadcast_to(wall * (1 - w) + floor * w, (height, width, 3))
    elif bg.kind == "wall_floor":
        image = np.where(below, floor, wall) * np.ones((1, width, 1), np.float32)
    elif bg.kind == "stripes":
        stripe = ((xs / bg.period).astype(np.int32) % 2)[None, :, None]
        wallpaper = np.where(stripe == 1, wall * 0.85 + floor * 0.15, wall)
        image = np.where(below, floor, wallpaper)
    elif bg.kind == "checker_floor":
        columns, rows = (xs / bg.period).astype(np.int32), (ys / bg.period).astype(np.int32)
        tile = ((columns[None, :] + rows[:, None]) % 2)[..., None]
        image = np.where(below, np.where(tile == 1, floor * 0.8, floor), wall)
    else:
        raise ValueError(f"unknown background kind {bg.kind!r} (known: {', '.join(BACKGROUND_KINDS)})")
    return np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))


# ---- objects and distractor -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneObject:
    """A coloured object the person can point at; `centre` and `radius` in pixels."""

    colour: str
    shape: str
    centre: Point
    radius: float

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


def draw_object(image: np.ndarray, obj: SceneObject) -> None:
    """The object with a dark outline, standing on a short shelf."""
    colour = OBJECT_COLOURS[obj.colour]
    edge = mix(colour, (0, 0, 0), 0.55)
    cx, cy = obj.centre
    r = obj.radius
    shelf_y = cy + r + max(1.0, 0.15 * r)
    cv2.line(
        image,
        _fixed((cx - 1.4 * r, shelf_y)),
        _fixed((cx + 1.4 * r, shelf_y)),
        (70, 55, 45),
        max(1, round(0.25 * r)),
        _AA,
        _SHIFT,
    )
    if obj.shape == "ball":
        cv2.circle(image, _fixed((cx, cy)), round(r * _ONE), colour, -1, _AA, _SHIFT)
        cv2.circle(image, _fixed((cx, cy)), round(r * _ONE), edge, 1, _AA, _SHIFT)
        return
    if obj.shape == "box":
        corners = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    elif obj.shape == "cone":
        corners = [(cx, cy - 1.15 * r), (cx + r, cy + r), (cx - r, cy + r)]
    else:
        raise ValueError(f"unknown object shape {obj.shape!r} (known: {', '.join(OBJECT_SHAPES)})")
    polygon = np.array([_fixed(p) for p in corners], np.int32)
    cv2.fillPoly(image, [polygon], colour, _AA, _SHIFT)
    cv2.polylines(image, [polygon], True, edge, 1, _AA, _SHIFT)


@dataclass(frozen=True)
class Distractor:
    """A neutral shape that bounces across the view at constant speed (pixels, pixels per second)."""

    shape: str  # "disc" | "square"
    colour: Colour
    start: Point
    velocity: Point
    radius: float

    def position(self, t: float, size: tuple[int, int]) -> Point:
        """Where it is at stream time t: straight motion reflected at the frame borders."""
        return (
            _bounce(self.start[0] + self.velocity[0] * t, self.radius, size[0] - self.radius),
            _bounce(self.start[1] + self.velocity[1] * t, self.radius, size[1] - self.radius),
        )


def _bounce(value: float, low: float, high: float) -> float:
    span = max(high - low, 1e-6)
    phase = (value - low) % (2 * span)
    return low + (phase if phase <= span else 2 * span - phase)


def draw_distractor(image: np.ndarray, d: Distractor, t: float) -> None:
    height, width = image.shape[:2]
    cx, cy = d.position(t, (width, height))
    if d.shape == "disc":
        cv2.circle(image, _fixed((cx, cy)), round(d.radius * _ONE), d.colour, -1, _AA, _SHIFT)
    else:
        r = d.radius
        square = ((cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r))
        cv2.fillPoly(image, [np.array([_fixed(p) for p in square], np.int32)], d.colour, _AA, _SHIFT)


# ---- the person -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    """One arm in body coordinates. `shape`: rest | open | thumb | palm | point."""

    elbow: Point
    hand: Point
    shape: str = "rest"


@dataclass(frozen=True)
class Pose:
    left: Arm
    right: Arm
    tilt: float = 0.0  # radians about the feet; positive falls towards the image right
    shift: float = 0.0  # sideways slide of the whole body, in body heights


REST_RIGHT = Arm((0.15, 0.62), (0.17, 0.47))
REST_LEFT = Arm((-0.15, 0.62), (-0.17, 0.47))
REST = Pose(REST_LEFT, REST_RIGHT)


@dataclass(frozen=True)
class Person:
    """Where the person stands (feet centre, pixels), how tall (pixels), and what they wear."""

    x: float
    feet_y: float
    height: float
    top: Colour
    bottom: Colour
    skin: Colour
    hair: Colour

    def to_image(self, pose: Pose, p: Point) -> Point:
        """A body-coordinate point in pixels, after the pose's tilt and shift."""
        c, s = math.cos(pose.tilt), math.sin(pose.tilt)
        rx = p[0] * c + p[1] * s
        ry = -p[0] * s + p[1] * c
        return (
            self.x + self.height * (rx + pose.shift),
            self.feet_y - self.height * (ry + _LIE_LIFT * abs(s)),
        )

    def to_body(self, pose: Pose, q: Point) -> Point:
        """Inverse of `to_image`: a pixel position in body coordinates."""
        c, s = math.cos(pose.tilt), math.sin(pose.tilt)
        rx = (q[0] - self.x) / self.height - pose.shift
        ry = (self.feet_y - q[1]) / self.height - _LIE_LIFT * abs(s)
        return rx * c - ry * s, rx * s + ry * c

    def bbox(self, margin: float = 0.45) -> tuple[int, int, int, int]:
        """Pixel box (x0, y0, x1, y1) around the standing person with room for raised and extended arms."""
        h = self.height
        return (
            round(self.x - margin * h),
            round(self.feet_y - 1.12 * h),
            round(self.x + margin * h),
            round(self.feet_y + 0.02 * h),
        )


def pointing_arm(person: Person, target: Point, reach: float = ARM_LENGTH) -> Arm:
    """The arm on the target's side, straight from its shoulder towards the target's pixel position."""
    shoulder = SHOULDER_R if target[0] >= person.x else SHOULDER_L
    sx, sy = person.to_image(REST, shoulder)
    dx, dy = target[0] - sx, sy - target[1]  # body y points up
    norm = math.hypot(dx, dy) or 1.0
    ux, uy = dx / norm, dy / norm
    return Arm(
        (shoulder[0] + 0.5 * reach * ux, shoulder[1] + 0.5 * reach * uy),
        (shoulder[0] + reach * ux, shoulder[1] + reach * uy),
        "point",
    )


def draw_person(image: np.ndarray, person: Person, pose: Pose) -> None:
    """Legs, torso, head with hair, both arms, then the hands (in front of everything)."""
    h = person.height

    def px(p: Point) -> tuple[int, int]:
        return _fixed(person.to_image(pose, p))

    limb = max(1, round(0.065 * h))
    arm_width = max(1, round(0.05 * h))
    for leg in _LEGS:
        cv2.polylines(image, [np.array([px(p) for p in leg], np.int32)], False, person.bottom, limb, _AA, _SHIFT)
    cv2.fillPoly(image, [np.array([px(p) for p in _TORSO], np.int32)], person.top, _AA, _SHIFT)
    cv2.line(image, px((0.0, 0.78)), px((0.0, 0.84)), person.skin, max(1, round(0.05 * h)), _AA, _SHIFT)
    head = px(HEAD)
    cv2.circle(image, head, round(HEAD_RADIUS * h * _ONE), person.skin, -1, _AA, _SHIFT)
    axes = (round(HEAD_RADIUS * 1.05 * h * _ONE), round(HEAD_RADIUS * 0.8 * h * _ONE))
    cv2.ellipse(image, head, axes, math.degrees(pose.tilt), 180, 360, person.hair, -1, _AA, _SHIFT)
    for shoulder, arm in ((SHOULDER_L, pose.left), (SHOULDER_R, pose.right)):
        points = np.array([px(shoulder), px(arm.elbow), px(arm.hand)], np.int32)
        cv2.polylines(image, [points], False, person.top, arm_width, _AA, _SHIFT)
    for arm in (pose.left, pose.right):
        _draw_hand(image, person, pose, arm, px)


def _draw_hand(image: np.ndarray, person: Person, pose: Pose, arm: Arm, px) -> None:
    h = person.height
    skin = person.skin
    hx, hy = arm.hand
    fx, fy = hx - arm.elbow[0], hy - arm.elbow[1]
    norm = math.hypot(fx, fy) or 1.0
    ux, uy = fx / norm, fy / norm  # forearm direction, body coordinates
    finger = max(1, round(0.022 * h))
    if arm.shape in ("rest", "point"):
        cv2.circle(image, px(arm.hand), round(0.035 * h * _ONE), skin, -1, _AA, _SHIFT)
        if arm.shape == "point":
            tip = (hx + 0.085 * ux, hy + 0.085 * uy)
            cv2.line(image, px(arm.hand), px(tip), skin, finger, _AA, _SHIFT)
    elif arm.shape == "open":  # a waving hand: palm and four spread fingers along the forearm
        cv2.circle(image, px(arm.hand), round(0.045 * h * _ONE), skin, -1, _AA, _SHIFT)
        for angle in (-0.55, -0.18, 0.18, 0.55):
            c, s = math.cos(angle), math.sin(angle)
            dx, dy = ux * c - uy * s, ux * s + uy * c
            cv2.line(image, px(arm.hand), px((hx + 0.085 * dx, hy + 0.085 * dy)), skin, finger, _AA, _SHIFT)
    elif arm.shape == "thumb":  # a fist with the thumb straight up
        half = 0.05
        fist = [(hx - half, hy + half), (hx + half, hy + half), (hx + half, hy - half), (hx - half, hy - half)]
        cv2.fillPoly(image, [np.array([px(p) for p in fist], np.int32)], skin, _AA, _SHIFT)
        thumb = (hx - 0.015, hy + half)
        width = max(1, round(0.038 * h))
        cv2.line(image, px(thumb), px((thumb[0], thumb[1] + 0.1)), skin, width, _AA, _SHIFT)
    elif arm.shape == "palm":  # a large open palm facing the camera, fingers up, thumb out
        hw, hh = 0.062, 0.055
        palm = [(hx - hw, hy + hh), (hx + hw, hy + hh), (hx + hw, hy - hh), (hx - hw, hy - hh)]
        cv2.fillPoly(image, [np.array([px(p) for p in palm], np.int32)], skin, _AA, _SHIFT)
        width = max(1, round(0.026 * h))
        for k in range(4):
            x = hx - hw + (k + 0.5) * (2 * hw / 4)
            cv2.line(image, px((x, hy + hh)), px((x + 0.012 * (k - 1.5), hy + hh + 0.085)), skin, width, _AA, _SHIFT)
        side = -1.0 if hx >= 0 else 1.0  # the thumb sticks out towards the body's centre line
        cv2.line(
            image, px((hx + side * hw, hy - 0.01)), px((hx + side * (hw + 0.06), hy + 0.04)), skin, width, _AA, _SHIFT
        )
    else:
        raise ValueError(f"unknown hand shape {arm.shape!r}")


# ---- camera -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Camera:
    """Sensor imperfections: Gaussian noise (sigma in 8-bit levels), colour gains, per-frame brightness jitter.

    Noise comes from a small bank of noise images cut at random offsets (4 x 16 x 16 = 1024 patterns), which is
    several times cheaper than drawing fresh Gaussian noise for every pixel of every frame.
    """

    noise_sigma: float
    gains: tuple[float, float, float]
    jitter: float

    BANK = 4
    MARGIN = 16

    def noise_bank(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        height, width, channels = shape
        size = (self.BANK, height + self.MARGIN, width + self.MARGIN, channels)
        return rng.standard_normal(size, dtype=np.float32) * np.float32(self.noise_sigma)

    def expose(self, image: np.ndarray, rng: np.random.Generator, bank: np.ndarray | None = None) -> np.ndarray:
        """The image as the camera delivers it (a new uint8 array); `bank` from noise_bank(image.shape, ...)."""
        if bank is None:
            bank = self.noise_bank(image.shape, rng)
        height, width = image.shape[:2]
        k, dy, dx = (int(v) for v in rng.integers((self.BANK, self.MARGIN, self.MARGIN)))
        gain = np.asarray(self.gains, np.float32) * np.float32(1.0 + self.jitter * rng.standard_normal())
        noisy = image.astype(np.float32) * gain
        noisy += bank[k, dy : dy + height, dx : dx + width]
        return np.clip(noisy, 0, 255, out=noisy).astype(np.uint8)
