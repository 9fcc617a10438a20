"""The synthetic gesture world: seeded streams of camera frames, microphone audio, user texts and ground truth.

The ViSpeak weights cannot be downloaded here, so the package trains its own tiny model on this world. A stream
shows a drawn person (render.py) in a room who, depending on the scenario, waves to wake the assistant, gives a
thumbs-up, points at one of several coloured objects while asking what it is, falls over, raises a palm to stop the
assistant mid-answer, waves goodbye with both hands, or does nothing at all. Each stream carries the answer the
assistant should give, the window in which that answer counts as timely (ViSpeak-Bench: `max(0, t1) <= t <= t2 + 2`)
and the informative-head label window (the second half of the event window).

Everything is a pure function of (split, seed, scenario, size, fps): separate random streams for the layout (room,
person, objects, noise levels), the script (timing, questions), the camera noise and the audio, so the same seed gives
the same bytes and the same seed in another scenario shows the same room and person. `split="heldout"` draws from
its own seed range and background palette, disjoint from `"train"`.

Times in the ground truth are stream seconds from the first frame; stamps are integer nanoseconds on a robot-like
epoch (`Stream.start_ns`). Recording writers live in recordings.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np

from vispeak_ros.core.clock import NS_PER_S
from vispeak_ros.core.events import Behaviour
from vispeak_ros.training import render
from vispeak_ros.training.render import Arm, Pose

SCENARIOS: tuple[str, ...] = ("wake_up", "thumbs_up", "point", "fall", "interrupt", "goodbye", "none")
SESSION = "session"
SESSION_STEPS: tuple[str, ...] = ("wake_up", "thumbs_up", "point", "goodbye")
BEHAVIOURS: MappingProxyType[str, Behaviour] = MappingProxyType(
    {
        "wake_up": Behaviour.WAKE_UP,
        "thumbs_up": Behaviour.GESTURE,
        "point": Behaviour.VISUAL_REFERENCE,
        "fall": Behaviour.ANOMALY,
        "interrupt": Behaviour.INTERRUPTION,
        "goodbye": Behaviour.TERMINATION,
    }
)
SPLITS: MappingProxyType[str, range] = MappingProxyType(
    {"train": range(0, 1_000_000_000), "heldout": range(1_000_000_000, 2_000_000_000)}
)
AUDIO_RATE = 16_000
START_EPOCH_S = 1_700_000_000  # recordings carry a robot's wall-clock stamps, far from zero
TIMELY_MARGIN_S = 2.0  # ViSpeak-Bench: an answer is timely up to t2 + 2 s
RAMP_S = 0.3  # an arm takes this long to reach (and to leave) a gesture
MIN_LEAD_S = 1.5  # idle before the first event: every event has a plain frame before it
MIN_TAIL_S = 2.5  # after the last event window: room for the t2 + 2 s margin
MIN_GAP_S = 2.5  # between a session's events: one event's t2 + 2 s margin ends before the next one's clip

# ---- the fixed vocabulary ---------------------------------------------------------------------------------------

ANSWER_TEXTS: MappingProxyType[Behaviour, str] = MappingProxyType(
    {
        Behaviour.WAKE_UP: "Hello! How can I help you?",
        Behaviour.ANOMALY: "Watch out, someone has fallen! Are you okay?",
        Behaviour.GESTURE: "Nice thumbs up!",
        Behaviour.VISUAL_REFERENCE: "That is the {object}.",
        Behaviour.INTERRUPTION: "Okay, I'll stop.",
        Behaviour.TERMINATION: "Goodbye, see you next time!",
    }
)
# Small talk before a thumbs-up or a goodbye, and (long answers) before an interruption: (question, answer).
SHORT_EXCHANGES: tuple[tuple[str, str], ...] = (
    ("What can you do?", "I can watch, listen and talk with you."),
    ("How are you today?", "I am fine, thank you for asking."),
    ("Can you see me?", "Yes, I can see you clearly."),
    ("Is the room tidy?", "Yes, the room looks tidy to me."),
)
LONG_EXCHANGES: tuple[tuple[str, str], ...] = (
    (
        "Tell me about the weather.",
        "Today will be sunny in the morning and cloudy in the afternoon, with light rain in the evening, so you may "
        "want to take an umbrella if you go out later.",
    ),
    (
        "Tell me a story.",
        "Once upon a time a small robot lived in a quiet house, and every morning it watched the sun rise over the "
        "garden while it waited for its friends to wake up.",
    ),
    (
        "How do I make tea?",
        "First boil some fresh water, then warm the cup, put a tea bag in it, pour the water over it, wait three to "
        "five minutes, take the bag out and add milk or sugar if you like.",
    ),
)
POINT_QUESTIONS: tuple[str, ...] = ("What am I pointing at?", "What is this?")
OPTION_LETTERS: tuple[str, ...] = ("A", "B", "C", "D")
CHOICE_PROMPT = "The best option is:"  # ViSpeak-Bench's multiple-choice suffix
GESTURE_LABEL = "Thumb Up"  # Gesture_Understanding's `gesture` for our thumbs-up
INTERRUPTION_LABEL = "pausing gesture"  # Visual_Interruption's `interruption_type` for a raised palm


def object_names() -> tuple[str, ...]:
    """Every object the world can show, as named in answers ("red ball", ...)."""
    return tuple(f"{c} {s}" for c in render.OBJECT_COLOURS for s in render.OBJECT_SHAPES)


def answer_text(behaviour: Behaviour, target: str = "") -> str:
    """The reference answer of a behaviour (the visual reference names its object)."""
    text = ANSWER_TEXTS[behaviour]
    return text.format(object=target) if behaviour == Behaviour.VISUAL_REFERENCE else text


def multiple_choice(question: str, options: Sequence[str]) -> str:
    """A question in ViSpeak-Bench's Visual Reference form: "What is this? A. x B. y C. z D. w", two newlines,
    "The best option is:"."""
    listed = " ".join(f"{letter}. {name}" for letter, name in zip(OPTION_LETTERS, options, strict=False))
    return f"{question} {listed}\n\n{CHOICE_PROMPT}"


def vocabulary() -> tuple[str, ...]:
    """Every string the world can produce: answers, questions, earlier assistant turns, object/colour/shape names and
    the multiple-choice pieces (option letters "A." .. "D." and the prompt). Sorted, no duplicates."""
    words: set[str] = set()
    for behaviour in ANSWER_TEXTS:
        if behaviour == Behaviour.VISUAL_REFERENCE:
            words.update(answer_text(behaviour, name) for name in object_names())
        else:
            words.add(answer_text(behaviour))
    for question, answer in SHORT_EXCHANGES + LONG_EXCHANGES:
        words.update((question, answer))
    words.update(POINT_QUESTIONS)
    words.update(object_names())
    words.update(render.OBJECT_COLOURS)
    words.update(render.OBJECT_SHAPES)
    words.update(f"{letter}." for letter in OPTION_LETTERS)
    words.add(CHOICE_PROMPT)
    return tuple(sorted(words))


# ---- data types -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """A line of dialogue. `time`: when a user question is complete (its text stamp) or an assistant answer starts;
    `span`: while the user speaks it, or while the assistant says it."""

    role: str  # "user" | "assistant"
    text: str
    time: float
    span: tuple[float, float]


@dataclass(frozen=True)
class Action:
    """What the person does over [start, end] (stream seconds); `end` is inf for a fall (they stay down)."""

    kind: str  # wave | goodbye | thumb | palm | point | fall
    start: float
    end: float
    target: int = -1  # object index, for point
    side: int = 1  # +1 right arm / falls to the image right, -1 left
    fall_s: float = 1.0  # how long the fall takes


@dataclass(frozen=True)
class Cue:
    """A sound in the microphone: a user speaking over [start, end], or the thud of a body hitting the floor."""

    kind: str  # speech | thud
    start: float
    end: float


@dataclass(frozen=True)
class GroundTruth:
    """One expected answer. `timespan` [t1, t2]: answering at t is timely iff max(0, t1) <= t <= t2 + 2 s; the
    informative head's label is 1 for frames in the second half, `label_window`. `gesture` is when the person's
    action is on screen; `clip` the part of the stream a benchmark item covers; `context` the dialogue it needs."""

    scenario: str
    behaviour: Behaviour
    answer: str
    timespan: tuple[float, float]
    gesture: tuple[float, float]
    clip: tuple[float, float]
    context: tuple[Turn, ...] = ()
    target: str = ""  # visual reference: the object pointed at
    options: tuple[str, ...] = ()  # visual reference: the multiple-choice options A-D

    @property
    def label_window(self) -> tuple[float, float]:
        t1, t2 = self.timespan
        return round((t1 + t2) / 2, 3), t2

    @property
    def answer_time(self) -> float:
        """The annotated answer time (ViSpeak-Bench `time`): the start of the label window."""
        return self.label_window[0]

    @property
    def choice(self) -> str:
        """Visual reference: the letter of the right option ("" for other behaviours)."""
        return OPTION_LETTERS[self.options.index(self.target)] if self.target else ""

    def timely(self, t: float) -> bool:
        t1, t2 = self.timespan
        return max(0.0, t1) <= t <= t2 + TIMELY_MARGIN_S

    def informative(self, t: float) -> bool:
        start, end = self.label_window
        return start <= t <= end


@dataclass(frozen=True)
class Scene:
    """The layout of one seed: room, person, objects, distractor, camera and microphone character."""

    size: tuple[int, int]
    background: render.Background
    person: render.Person
    objects: tuple[render.SceneObject, ...]
    objects_visible: bool
    distractor: render.Distractor | None
    camera: render.Camera | None
    hand: int  # the arm that gestures: +1 right (image right), -1 left
    sway: float  # idle arm-swing phase
    noise_level: float  # microphone background noise, RMS
    pink: bool  # pink-ish (else white) background noise
    voice_hz: float  # the user's voice pitch

    @property
    def fall_side(self) -> int:
        """A fall goes towards the wider side of the view."""
        return 1 if self.person.x < self.size[0] / 2 else -1


@dataclass(eq=False)
class Stream:
    """A generated recording: frames and 16 kHz mono audio stamped in ns, dialogue, and the expected answers."""

    seed: int
    split: str
    scenario: str
    name: str
    size: tuple[int, int]
    fps: float
    duration_s: float
    start_ns: int
    frames: list[tuple[int, np.ndarray]]
    audio: np.ndarray
    audio_start_ns: int
    turns: tuple[Turn, ...]
    events: tuple[GroundTruth, ...]
    actions: tuple[Action, ...]
    scene: Scene
    steps: tuple[str, ...] = field(default=())

    def stamp(self, t: float) -> int:
        """Stream seconds to an absolute stamp in ns."""
        return self.start_ns + round(t * NS_PER_S)

    def seconds(self, stamp_ns: int) -> float:
        return (stamp_ns - self.start_ns) / NS_PER_S

    @property
    def user_texts(self) -> list[tuple[int, str]]:
        """(stamp_ns, text) of each user question, stamped when it is complete."""
        return [(self.stamp(t.time), t.text) for t in self.turns if t.role == "user"]

    @property
    def assistant_texts(self) -> list[tuple[int, str]]:
        """(stamp_ns, text) of the assistant's earlier answers (pre-filled, as ViSpeak-Bench does)."""
        return [(self.stamp(t.time), t.text) for t in self.turns if t.role == "assistant"]

    def frame_at(self, t: float) -> np.ndarray:
        """The latest frame at or before stream time t (the first frame before the stream starts)."""
        index = max(0, min(len(self.frames) - 1, math.floor(t * self.fps + 1e-9)))
        return self.frames[index][1]

    def informative_labels(self, times: Iterable[float]) -> np.ndarray:
        """Per time (stream seconds): 1 inside any event's label window, else 0 (uint8)."""
        return np.array([any(e.informative(t) for e in self.events) for t in times], np.uint8)

    def audio_chunks(
        self, rate: int = AUDIO_RATE, chunk: int = 1024, dtype: str = "float32"
    ) -> list[tuple[int, np.ndarray]]:
        """The audio as a microphone delivers it: (stamp of the first sample, samples) in full chunks only.

        rate 16000 or 48000 (resampled with soxr, no group delay); dtype "float32" in [-1, 1] or "int16".
        """
        if rate == AUDIO_RATE:
            samples = self.audio
        elif rate == 48_000:
            import soxr

            samples = soxr.resample(self.audio, AUDIO_RATE, rate).astype(np.float32)
        else:
            raise ValueError(f"audio rate must be 16000 or 48000, got {rate}")
        if chunk <= 0:
            raise ValueError(f"chunk must be > 0, got {chunk}")
        if dtype == "int16":
            samples = np.round(np.clip(samples, -1.0, 32767 / 32768) * 32768).astype(np.int16)
        elif dtype != "float32":
            raise ValueError(f"dtype must be 'float32' or 'int16', got {dtype!r}")
        return [
            (self.audio_start_ns + start * NS_PER_S // rate, samples[start : start + chunk])
            for start in range(0, len(samples) - chunk + 1, chunk)
        ]


# ---- randomness -------------------------------------------------------------------------------------------------

_PURPOSES = ("layout", "script", "camera", "audio")


def _rng(split: str, seed: int, purpose: str, scenario: str = "") -> np.random.Generator:
    """An independent generator per (split, seed, purpose[, scenario]), so e.g. frame size never shifts timings."""
    key = [list(SPLITS).index(split), seed, _PURPOSES.index(purpose)]
    key += [(*SCENARIOS, SESSION).index(scenario)] if scenario else []
    return np.random.default_rng(np.random.SeedSequence(key))


def check_seed(seed: int, split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
    if int(seed) != seed or seed not in SPLITS[split]:
        r = SPLITS[split]
        raise ValueError(f"seed {seed!r} is not in the {split} range [{r.start}, {r.stop})")


def _r(x: float) -> float:
    return round(float(x), 2)


# ---- layout -----------------------------------------------------------------------------------------------------


def layout(seed: int, split: str = "train", size: tuple[int, int] = (160, 120)) -> Scene:
    """The room, person and objects a seed shows (the same in every scenario), in pixels of `size`."""
    check_seed(seed, split)
    width, height = size
    rng = _rng(split, seed, "layout")
    palette = render.BACKGROUND_PALETTES[split]
    names = list(palette)
    for _ in range(1000):
        kind = str(rng.choice(render.BACKGROUND_KINDS))
        wall, floor = (str(c) for c in rng.choice(names, 2, replace=False))
        feet = rng.uniform(0.86, 0.95)
        tall = rng.uniform(0.55, 0.75)
        x = rng.uniform(0.32, 0.68) * width / height
        background = render.Background(
            kind, wall, floor, split, float(feet - rng.uniform(0.08, 0.2)), period=float(rng.uniform(0.08, 0.16))
        )
        walls = [palette[wall], palette[floor]]
        skin = _pick(rng, _far(render.SKIN_TONES, walls[:1], 80))  # raised hands show against the wall
        person = render.Person(
            float(x * height),
            float(feet * height),
            float(tall * height),
            _pick(rng, _far(render.TOP_COLOURS, [*walls, skin], 70)),  # sleeves and a fist in front must show
            _pick(rng, _far(render.BOTTOM_COLOURS, walls, 70)),
            skin,
            _pick(rng, render.HAIR_COLOURS),
        )
        objects = _place_objects(rng, person, size)
        if len(objects) >= 2:
            break
    else:  # pragma: no cover - a frame too small for two objects beside a person
        raise ValueError(f"frame size {size} leaves no room for the objects")
    distractor = None
    if rng.random() < 0.75:
        angle = rng.uniform(0, 2 * math.pi)
        speed = rng.uniform(0.15, 0.5) * height
        distractor = render.Distractor(
            str(rng.choice(["disc", "square"])),
            _pick(rng, render.DISTRACTOR_COLOURS),
            (float(rng.uniform(0, width)), float(rng.uniform(0, height))),
            (float(speed * math.cos(angle)), float(speed * math.sin(angle))),
            float(rng.uniform(0.035, 0.06) * height),
        )
    red, green, blue = (float(g) for g in rng.uniform(0.94, 1.06, 3) * rng.uniform(0.88, 1.12))
    sigma, jitter = float(rng.uniform(0.5, 3.0)), float(rng.uniform(0.005, 0.03))
    camera = render.Camera(sigma, (red, green, blue), jitter)
    return Scene(
        size=(width, height),
        background=background,
        person=person,
        objects=objects,
        objects_visible=bool(rng.random() < 0.5),
        distractor=distractor,
        camera=camera,
        hand=int(rng.choice([-1, 1])),
        sway=float(rng.uniform(0, 2 * math.pi)),
        noise_level=float(rng.uniform(0.002, 0.02)),
        pink=bool(rng.random() < 0.5),
        voice_hz=float(rng.uniform(100, 240)),
    )


def _pick(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


def _far(colours: Sequence[render.Colour], others: Sequence[render.Colour], distance: float) -> list[render.Colour]:
    """The colours at least `distance` (RGB) from all `others`, so body parts stand out; all if none is."""
    far = [c for c in colours if min(math.dist(c, o) for o in others) >= distance]
    return far or list(colours)


def _place_objects(rng: np.random.Generator, person: render.Person, size: tuple[int, int]) -> tuple:
    """2-4 objects of distinct colours beside the person, each in its own pointing direction.

    Directions from the shoulder that would point at them are at least 28 degrees apart on the same side, so a
    straight arm tells which object is meant, and between 50 degrees below and 20 above horizontal (a steeper arm
    would look like hanging or waving).
    """
    width, height = size
    h = person.height
    count = int(rng.integers(2, 5))
    colours = [list(render.OBJECT_COLOURS)[i] for i in rng.permutation(len(render.OBJECT_COLOURS))[:count]]
    placed: list[tuple[render.SceneObject, int, float]] = []
    for colour in colours:
        for _ in range(60):
            side = int(rng.choice([-1, 1]))
            elevation = math.radians(rng.uniform(-50, 20))
            distance = rng.uniform(0.58, 0.9) * h
            radius = rng.uniform(0.08, 0.1) * h
            sx, sy = person.to_image(render.REST, render.SHOULDER_R if side > 0 else render.SHOULDER_L)
            cx = sx + side * distance * math.cos(elevation)
            cy = sy - distance * math.sin(elevation)
            margin = 0.02 * height  # relative, so every frame size shows the same layout, scaled
            if not (radius + margin <= cx <= width - radius - margin and 1.3 * radius + margin <= cy):
                continue
            if cy > person.feet_y - radius:
                continue
            if abs(cx - person.x) < 0.2 * h + radius:
                continue
            if any(s == side and abs(a - elevation) < math.radians(28) for _, s, a in placed):
                continue
            if any(math.hypot(cx - o.centre[0], cy - o.centre[1]) < 2.8 * max(radius, o.radius) for o, _, _ in placed):
                continue
            shape = render.OBJECT_SHAPES[int(rng.integers(len(render.OBJECT_SHAPES)))]
            placed.append((render.SceneObject(colour, shape, (float(cx), float(cy)), float(radius)), side, elevation))
            break
    return tuple(o for o, _, _ in placed)


# ---- script -----------------------------------------------------------------------------------------------------


@dataclass
class _Block:
    """One scenario's part of the script, in times relative to the block's start."""

    length: float
    actions: list[Action] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)
    events: list[GroundTruth] = field(default_factory=list)


def _speech_s(text: str, per_word: float) -> float:
    return _r(0.3 + per_word * len(text.split()))


def _exchange(
    rng: np.random.Generator, pairs: Sequence[tuple[str, str]], block: _Block, used: set[str]
) -> tuple[float, float]:
    """A user question (not yet asked in this stream, while there are others) then the assistant's answer, at the
    block's start. Returns (answer start, answer end)."""
    fresh = [pair for pair in pairs if pair[0] not in used] or list(pairs)
    question, answer = fresh[int(rng.integers(len(fresh)))]
    used.add(question)
    asked = _speech_s(question, 0.3)
    start = _r(asked + 0.1)
    end = _r(start + _speech_s(answer, 0.3))
    block.turns += [Turn("user", question, asked, (0.0, asked)), Turn("assistant", answer, start, (start, end))]
    block.cues.append(Cue("speech", 0.0, asked))
    return start, end


def _gesture_event(scenario: str, start: float, end: float, block: _Block, context: tuple[Turn, ...] = ()) -> None:
    behaviour = BEHAVIOURS[scenario]
    block.events.append(
        GroundTruth(scenario, behaviour, answer_text(behaviour), (start, end), (start, end), (0.0, 0.0), context)
    )


def _block(scenario: str, rng: np.random.Generator, scene: Scene, used: set[str]) -> _Block:
    """The script of one scenario. Gestures last 2-3 s, so the label half-window holds at least one 1 fps frame."""
    block = _Block(0.0)
    hand = scene.hand
    if scenario in ("wake_up", "thumbs_up", "goodbye"):
        start = 0.0
        if scenario != "wake_up":
            _, said = _exchange(rng, SHORT_EXCHANGES, block, used)
            start = _r(said + rng.uniform(0.5, 1.5))
        end = _r(start + rng.uniform(2.0, 3.0))
        kind = {"wake_up": "wave", "thumbs_up": "thumb", "goodbye": "goodbye"}[scenario]
        block.actions.append(Action(kind, start, end, side=hand))
        _gesture_event(scenario, start, end, block, tuple(block.turns))
        block.length = _r(end + RAMP_S)
    elif scenario == "interrupt":
        answering, said = _exchange(rng, LONG_EXCHANGES, block, used)
        start = _r(answering + rng.uniform(1.0, 3.0))
        end = _r(start + rng.uniform(2.0, 3.0))
        assistant = block.turns[1]
        block.turns[1] = replace(assistant, span=(assistant.span[0], min(said, end)))  # it stops when told to
        block.actions.append(Action("palm", start, end, side=hand))
        _gesture_event(scenario, start, end, block, tuple(block.turns))
        block.length = _r(end + RAMP_S)
    elif scenario == "point":
        objects = scene.objects
        target = int(rng.integers(len(objects)))
        question = POINT_QUESTIONS[int(rng.integers(len(POINT_QUESTIONS)))]
        speak = _r(RAMP_S + rng.uniform(0.0, 0.4))
        asked = _r(speak + _speech_s(question, 0.3))
        end = _r(asked + rng.uniform(2.0, 3.0))
        side = 1 if objects[target].centre[0] >= scene.person.x else -1
        block.actions.append(Action("point", 0.0, end, target=target, side=side))
        turn = Turn("user", question, asked, (speak, asked))
        block.turns.append(turn)
        block.cues.append(Cue("speech", speak, asked))
        names = [o.name for o in objects]
        fillers = [n for n in object_names() if n not in names]
        extra = [fillers[i] for i in rng.permutation(len(fillers))[: len(OPTION_LETTERS) - len(names)]]
        options = tuple(str(n) for n in rng.permutation(names + extra))
        block.events.append(
            GroundTruth(
                "point",
                Behaviour.VISUAL_REFERENCE,
                answer_text(Behaviour.VISUAL_REFERENCE, names[target]),
                (asked, end),
                (0.0, end),
                (0.0, 0.0),
                (turn,),
                target=names[target],
                options=options,
            )
        )
        block.length = _r(end + RAMP_S)
    elif scenario == "fall":
        fall_s = _r(rng.uniform(0.8, 1.2))
        end = _r(fall_s + rng.uniform(1.5, 2.5))
        block.actions.append(Action("fall", 0.0, math.inf, side=scene.fall_side, fall_s=fall_s))
        block.cues.append(Cue("thud", fall_s, fall_s + 0.3))
        _gesture_event(scenario, 0.0, end, block)  # on screen: the fall and the first seconds lying (they stay down)
        block.length = end
    elif scenario == "none":
        if rng.random() < 0.5:
            _, said = _exchange(rng, SHORT_EXCHANGES, block, used)
            block.length = said
    else:
        raise ValueError(f"unknown scenario {scenario!r} (known: {', '.join((*SCENARIOS, SESSION))})")
    return block


def _shift(block: _Block, offset: float, clip: tuple[float, float]) -> _Block:
    def turn(t: Turn) -> Turn:
        return replace(t, time=_r(t.time + offset), span=(_r(t.span[0] + offset), _r(t.span[1] + offset)))

    def span(s: tuple[float, float]) -> tuple[float, float]:
        return _r(s[0] + offset), (s[1] if math.isinf(s[1]) else _r(s[1] + offset))

    return _Block(
        block.length,
        [
            replace(a, start=_r(a.start + offset), end=a.end if math.isinf(a.end) else _r(a.end + offset))
            for a in block.actions
        ],
        [turn(t) for t in block.turns],
        [replace(c, start=c.start + offset, end=c.end + offset) for c in block.cues],
        [
            replace(
                e,
                timespan=span(e.timespan),
                gesture=span(e.gesture),
                clip=clip,
                context=tuple(turn(t) for t in e.context),
            )
            for e in block.events
        ],
    )


def _script(
    steps: Sequence[str], rng: np.random.Generator, scene: Scene, duration_s: float | None
) -> tuple[float, _Block]:
    """Blocks laid out in time with idle gaps: at least MIN_LEAD_S before the first, MIN_GAP_S between, MIN_TAIL_S
    after; the slack (seeded, or what `duration_s` leaves) is shared among the gaps."""
    used: set[str] = set()
    blocks = [_block(step, rng, scene, used) for step in steps]
    leads = [MIN_LEAD_S] + [MIN_GAP_S] * (len(blocks) - 1)
    need = sum(b.length for b in blocks) + sum(leads) + MIN_TAIL_S
    slack = float(rng.uniform(8.0, 14.0) - need if steps == ("none",) else rng.uniform(1.0, 5.0))
    weights = rng.dirichlet(np.ones(len(blocks) + 1))
    if duration_s is not None:
        slack = float(duration_s) - need
        if slack < -1e-9:
            raise ValueError(f"{'+'.join(steps)} needs at least {need:.2f} s for this seed, not {duration_s} s")
    slack = max(slack, 0.0)
    starts, t = [], 0.0
    for block, lead, w in zip(blocks, leads, weights, strict=False):
        t = _r(t + lead + slack * w)
        starts.append(t)
        t = _r(t + block.length)
    duration = _r(duration_s) if duration_s is not None else _r(t + MIN_TAIL_S + slack * weights[-1])
    # A benchmark item's clip: one event each, cut half a second before the next block starts.
    cuts = [0.0] + [_r(s - 0.5) for s in starts[1:]] + [duration]
    merged = _Block(duration)
    for i, (block, start) in enumerate(zip(blocks, starts, strict=True)):
        moved = _shift(block, start, (cuts[i], cuts[i + 1]) if len(blocks) > 1 else (0.0, duration))
        merged.actions += moved.actions
        merged.turns += moved.turns
        merged.cues += moved.cues
        merged.events += moved.events
    return duration, merged


# ---- animation --------------------------------------------------------------------------------------------------


def _mirror(arm: Arm, side: int) -> Arm:
    if side > 0:
        return arm
    return Arm((-arm.elbow[0], arm.elbow[1]), (-arm.hand[0], arm.hand[1]), arm.shape)


def _with_arm(pose: Pose, arm: Arm, side: int) -> Pose:
    return replace(pose, right=arm) if side > 0 else replace(pose, left=arm)


def _blend(a: Arm, b: Arm, w: float) -> Arm:
    def lerp(p, q):
        return p[0] + (q[0] - p[0]) * w, p[1] + (q[1] - p[1]) * w

    return Arm(lerp(a.elbow, b.elbow), lerp(a.hand, b.hand), b.shape if w >= 0.5 else a.shape)


def _rest(t: float, scene: Scene) -> Pose:
    """Standing, arms hanging and swinging a little."""
    swing = 0.008 * math.sin(2 * math.pi * 0.35 * t + scene.sway)
    right, left = render.REST_RIGHT, render.REST_LEFT
    return Pose(
        Arm(left.elbow, (left.hand[0] - swing, left.hand[1])),
        Arm(right.elbow, (right.hand[0] + swing, right.hand[1])),
    )


def _waving(tau: float, phase: float = 0.0) -> Arm:
    return Arm((0.3, 0.84), (0.3 + 0.07 * math.sin(2 * math.pi * 1.6 * tau + phase), 1.03), "open")


def pose_at(t: float, actions: Sequence[Action], scene: Scene) -> Pose:
    """The person's pose at stream time t: rest, or an action blended in and out over RAMP_S."""
    rest = _rest(t, scene)
    for a in actions:
        if a.kind == "fall" and t >= a.start:
            p = min(1.0, (t - a.start) / a.fall_s)
            ease = p * p  # accelerating, as a body tips over
            return replace(rest, tilt=a.side * math.pi / 2 * ease, shift=-a.side * 0.45 * ease)
        if not a.start <= t <= a.end + RAMP_S:
            continue
        w = min(1.0, (t - a.start) / RAMP_S, (a.end + RAMP_S - t) / RAMP_S)
        tau = t - a.start
        if a.kind == "goodbye":
            right, left = _waving(tau), _mirror(_waving(tau), -1)
            return Pose(_blend(rest.left, left, w), _blend(rest.right, right, w))
        if a.kind == "point":
            target = render.pointing_arm(scene.person, scene.objects[a.target].centre)
        else:
            target = {
                "wave": _waving(tau),
                "thumb": Arm((0.2, 0.55), (0.09, 0.63), "thumb"),
                "palm": Arm((0.2, 0.6), (0.05, 0.72), "palm"),
            }[a.kind]
            target = _mirror(target, a.side)
        current = rest.right if a.side > 0 else rest.left
        return _with_arm(rest, _blend(current, target, w), a.side)
    return rest


# ---- audio ------------------------------------------------------------------------------------------------------


def _noise(rng: np.random.Generator, n: int, pink: bool) -> np.ndarray:
    white = rng.standard_normal(n)
    if not pink:
        return white
    spectrum = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1 / AUDIO_RATE)
    spectrum /= np.sqrt(np.maximum(f, 20.0))
    shaped = np.fft.irfft(spectrum, n)
    return shaped / (shaped.std() + 1e-12)


def _speech(rng: np.random.Generator, n: int, voice_hz: float) -> np.ndarray:
    """Voice-like babble: a harmonic buzz with a wandering pitch and 4-5 syllables per second."""
    t = np.arange(n) / AUDIO_RATE
    f0 = voice_hz * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.8, 1.6) * t + rng.uniform(0, 6.3)))
    phase = 2 * np.pi * np.cumsum(f0) / AUDIO_RATE
    weights = rng.uniform(0.3, 1.0, 8) / np.arange(1, 9)
    buzz = sum(w * np.sin(k * phase) for k, w in enumerate(weights, start=1))
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(4.0, 5.0) * t), 0, None) ** 0.7
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02) if n > 1 else np.ones(n)
    return buzz * syllables * fade / (np.abs(buzz).max() + 1e-12)


def _thud(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / AUDIO_RATE
    body = np.sin(2 * np.pi * rng.uniform(45, 70) * t) * np.exp(-t / 0.08)
    return body + 0.6 * rng.standard_normal(n) * np.exp(-t / 0.02)


def _audio(duration: float, cues: Sequence[Cue], scene: Scene, rng: np.random.Generator) -> np.ndarray:
    n = round(duration * AUDIO_RATE)
    audio = scene.noise_level * _noise(rng, n, scene.pink)
    for cue in cues:
        a, b = round(cue.start * AUDIO_RATE), min(n, round(cue.end * AUDIO_RATE))
        if b <= a:
            continue
        if cue.kind == "speech":
            audio[a:b] += rng.uniform(0.1, 0.2) * _speech(rng, b - a, scene.voice_hz)
        else:
            audio[a:b] += rng.uniform(0.3, 0.5) * _thud(rng, b - a)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


# ---- generation -------------------------------------------------------------------------------------------------


def render_frame(scene: Scene, actions: Sequence[Action], t: float, background: np.ndarray) -> np.ndarray:
    """The noise-free picture at stream time t (`background`: render.render_background with objects drawn in)."""
    image = background.copy()
    if scene.distractor is not None:
        render.draw_distractor(image, scene.distractor, t)
    render.draw_person(image, scene.person, pose_at(t, actions, scene))
    return image


def generate(
    scenario: str,
    seed: int,
    split: str = "train",
    duration_s: float | None = None,
    size: tuple[int, int] = (160, 120),
    fps: float = 10.0,
    *,
    steps: Sequence[str] | None = None,
    clean: bool = False,
) -> Stream:
    """One stream. `scenario` is one of SCENARIOS, or SESSION to chain `steps` (default SESSION_STEPS; a fall can
    only come last). `duration_s` None picks a seeded length that fits the script, else must be long enough.
    `clean` drops camera noise and the distractor (tests and inspection); layout and timing stay the same."""
    check_seed(seed, split)
    if scenario == SESSION:
        steps = tuple(steps) if steps is not None else SESSION_STEPS
        if not steps or any(s not in BEHAVIOURS for s in steps):
            raise ValueError(f"session steps must be event scenarios ({', '.join(BEHAVIOURS)}), got {steps!r}")
        if "fall" in steps[:-1]:
            raise ValueError("a fall can only be the last step of a session (the person stays down)")
    elif scenario in SCENARIOS:
        if steps is not None:
            raise ValueError("steps are only for the session scenario")
        steps = (scenario,)
    else:
        raise ValueError(f"unknown scenario {scenario!r} (known: {', '.join((*SCENARIOS, SESSION))})")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    width, height = int(size[0]), int(size[1])
    if width < 64 or height < 48:
        raise ValueError(f"frame size must be at least 64x48, got {width}x{height}")
    scene = layout(seed, split, (width, height))
    if "point" in steps:
        scene = replace(scene, objects_visible=True)
    if clean:
        scene = replace(scene, distractor=None, camera=None)
    duration, script = _script(steps, _rng(split, seed, "script", scenario), scene, duration_s)

    background = render.render_background(scene.background, (width, height))
    if scene.objects_visible:
        for obj in scene.objects:
            render.draw_object(background, obj)
    start_ns = (START_EPOCH_S + (seed * 7919) % 10_000_000) * NS_PER_S + (seed * 104_729) % 1000 * 1_000_000
    camera_rng = _rng(split, seed, "camera", scenario)
    bank = None if scene.camera is None else scene.camera.noise_bank((height, width, 3), camera_rng)
    frames: list[tuple[int, np.ndarray]] = []
    for i in range(math.floor(duration * fps + 1e-9)):
        stamp = start_ns + round(i * NS_PER_S / fps)
        image = render_frame(scene, script.actions, i / fps, background)
        if scene.camera is not None:
            image = scene.camera.expose(image, camera_rng, bank)
        frames.append((stamp, image))
    audio = _audio(duration, script.cues, scene, _rng(split, seed, "audio", scenario))
    return Stream(
        seed=seed,
        split=split,
        scenario=scenario,
        name=f"{split}_{scenario}_{seed:010d}",
        size=(width, height),
        fps=float(fps),
        duration_s=duration,
        start_ns=start_ns,
        frames=frames,
        audio=audio,
        audio_start_ns=start_ns,
        turns=tuple(sorted(script.turns, key=lambda turn: turn.time)),
        events=tuple(script.events),
        actions=tuple(script.actions),
        scene=scene,
        steps=tuple(steps),
    )


def generate_session(seed: int, steps: Sequence[str] = SESSION_STEPS, split: str = "train", **kwargs) -> Stream:
    """A session chaining several events in one stream (default: wake up, thumbs up, point, goodbye)."""
    return generate(SESSION, seed, split, steps=steps, **kwargs)


def split_seeds(n: int, seed: int, split: str = "train") -> list[int]:
    """n distinct stream seeds from the split's range, chosen by `seed`."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
    span = SPLITS[split]
    rng = np.random.default_rng(np.random.SeedSequence([list(SPLITS).index(split), seed, 99]))
    chosen: list[int] = []
    seen: set[int] = set()
    while len(chosen) < n:
        s = int(span.start + rng.integers(len(span)))
        if s not in seen:
            seen.add(s)
            chosen.append(s)
    return chosen


def generate_set(
    n: int, seed: int, split: str = "train", scenarios: Sequence[str] = SCENARIOS, **kwargs
) -> list[Stream]:
    """n streams cycling through `scenarios`, each with its own seed from the split (see split_seeds)."""
    if not scenarios:
        raise ValueError("scenarios must not be empty")
    return [
        generate(scenarios[i % len(scenarios)], s, split, **kwargs) for i, s in enumerate(split_seeds(n, seed, split))
    ]
