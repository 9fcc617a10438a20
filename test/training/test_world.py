"""The synthetic gesture world: determinism, splits, scripts and ground truth, what the frames show, audio cues."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import time

import numpy as np
import pytest

from vispeak_ros.core.events import Behaviour
from vispeak_ros.training import render, world

EVENT_SCENARIOS = tuple(s for s in world.SCENARIOS if s != "none")
SEEDS = (3, 41, 977)


def _clean(scenario: str, seed: int, **kwargs) -> world.Stream:
    return world.generate(scenario, seed, clean=True, **kwargs)


def _changed(a: np.ndarray, b: np.ndarray, box: tuple[int, int, int, int], level: int = 40) -> np.ndarray:
    """Mask of pixels inside `box` whose largest channel difference exceeds `level`."""
    height, width = a.shape[:2]
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(width, box[2]), min(height, box[3])
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > level
    mask = np.zeros((height, width), bool)
    mask[y0:y1, x0:x1] = diff[y0:y1, x0:x1]
    return mask


def _mid(event: world.GroundTruth) -> float:
    start, end = event.label_window
    return (start + end) / 2


def _pre(event: world.GroundTruth) -> float:
    return event.gesture[0] - 0.5


def _scenery(stream: world.Stream) -> np.ndarray:
    """The background and objects of a clean stream, without the person."""
    image = render.render_background(stream.scene.background, stream.size)
    if stream.scene.objects_visible:
        for obj in stream.scene.objects:
            render.draw_object(image, obj)
    return image


# ---- determinism and splits -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["point", "fall", "session"])
def test_same_seed_gives_the_same_bytes_and_another_seed_differs(scenario):
    a, b = world.generate(scenario, 123), world.generate(scenario, 123)
    assert len(a.frames) == len(b.frames) > 0
    assert all(sa == sb and fa.tobytes() == fb.tobytes() for (sa, fa), (sb, fb) in zip(a.frames, b.frames, strict=True))
    assert a.audio.tobytes() == b.audio.tobytes()
    assert a.events == b.events and a.turns == b.turns and a.scene == b.scene and a.start_ns == b.start_ns
    c = world.generate(scenario, 124)
    assert c.scene != a.scene and c.events != a.events and c.start_ns != a.start_ns
    n = min(len(a.frames), len(c.frames))
    assert all(a.frames[i][1].tobytes() != c.frames[i][1].tobytes() for i in range(n))
    assert a.audio[:16000].tobytes() != c.audio[:16000].tobytes()


def test_a_seed_shows_the_same_room_and_person_in_every_scenario_and_size():
    small, big = world.layout(8), world.layout(8, size=(320, 240))
    scenes = {world.generate(s, 8, clean=True).scene.person for s in world.SCENARIOS}
    assert scenes == {small.person}
    assert small.background == big.background
    assert [o.name for o in small.objects] == [o.name for o in big.objects]
    for a, b in zip(small.objects, big.objects, strict=True):
        assert b.centre == pytest.approx((2 * a.centre[0], 2 * a.centre[1]), rel=1e-6)
    assert big.person.height == pytest.approx(2 * small.person.height)


def test_train_and_heldout_use_disjoint_seeds_and_backgrounds():
    train, heldout = world.SPLITS["train"], world.SPLITS["heldout"]
    assert train.stop <= heldout.start or heldout.stop <= train.start
    with pytest.raises(ValueError, match="heldout range"):
        world.generate("wake_up", 5, split="heldout")
    with pytest.raises(ValueError, match="train range"):
        world.generate("wake_up", heldout.start, split="train")
    palettes = render.BACKGROUND_PALETTES
    assert not set(palettes["train"]) & set(palettes["heldout"])
    distances = [
        math.dist(a, b) for a in palettes["train"].values() for b in palettes["heldout"].values()
    ]  # fmt: skip
    assert min(distances) > 20  # not just different names
    seen: dict[str, set[str]] = {}
    for split in world.SPLITS:
        streams = world.generate_set(14, seed=1, split=split, duration_s=None, size=(64, 48), fps=1.0)
        assert all(s.seed in world.SPLITS[split] for s in streams)
        assert len({s.seed for s in streams}) == 14
        assert [s.scenario for s in streams] == list(world.SCENARIOS) * 2
        seen[split] = {c for s in streams for c in s.scene.background.colours}
        assert seen[split] <= set(palettes[split])
    assert not seen["train"] & seen["heldout"]
    assert world.split_seeds(5, 1, "heldout") == world.split_seeds(5, 1, "heldout")
    assert not set(world.split_seeds(50, 1, "train")) & set(world.split_seeds(50, 1, "heldout"))


# ---- scripts and ground truth -----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", world.SCENARIOS)
def test_every_scenario_renders_with_its_ground_truth_inside_the_stream(scenario):
    stream = world.generate(scenario, 2024)
    width, height = stream.size
    assert stream.size == (160, 120) and stream.fps == 10.0
    assert len(stream.frames) == math.floor(stream.duration_s * stream.fps + 1e-9)
    stamps = [s for s, _ in stream.frames]
    assert stamps[0] == stream.start_ns >= world.START_EPOCH_S * 10**9
    assert all(b - a == pytest.approx(1e8, abs=1) for a, b in itertools.pairwise(stamps))
    assert all(f.shape == (height, width, 3) and f.dtype == np.uint8 for _, f in stream.frames)
    assert stream.audio.dtype == np.float32 and len(stream.audio) == round(stream.duration_s * world.AUDIO_RATE)
    assert np.abs(stream.audio).max() <= 1.0
    vocabulary = set(world.vocabulary())
    assert all(t.text in vocabulary for t in stream.turns)
    if scenario == "none":
        assert stream.events == ()
        assert not stream.informative_labels(np.arange(0, stream.duration_s, 1.0)).any()
        return
    (event,) = stream.events
    assert event.behaviour == world.BEHAVIOURS[scenario] and event.scenario == scenario
    assert event.answer in vocabulary
    t1, t2 = event.timespan
    assert 0 < t1 < t2 and t2 + world.TIMELY_MARGIN_S <= stream.duration_s
    assert event.gesture[0] >= 1.0  # a plain frame exists before the gesture
    assert event.label_window == pytest.approx(((t1 + t2) / 2, t2), abs=1e-3)
    assert event.timely(t1) and event.timely(t2 + 2.0) and not event.timely(t2 + 2.01) and not event.timely(t1 - 0.01)
    # the model samples 1 fps: whatever the phase, at least one sampled frame falls in the label window
    for phase in np.linspace(0, 0.9, 10):
        times = np.arange(phase, stream.duration_s, 1.0)
        labels = stream.informative_labels(times)
        assert labels.sum() >= 1
        assert all(event.label_window[0] <= t <= t2 for t in times[labels == 1])


def test_context_dialogue_matches_the_benchmark_scenarios():
    thumbs, goodbye, interrupt, point, wake, fall = (
        world.generate(s, 77) for s in ("thumbs_up", "goodbye", "interrupt", "point", "wake_up", "fall")
    )
    for stream in (thumbs, goodbye, interrupt):
        (event,) = stream.events
        user, assistant = event.context
        assert (user.role, assistant.role) == ("user", "assistant")
        assert user.span[1] == user.time < assistant.time < event.timespan[0]
        assert stream.user_texts == [(stream.stamp(user.time), user.text)]
        assert stream.assistant_texts == [(stream.stamp(assistant.time), assistant.text)]
    # the palm comes while the assistant is still talking (its long answer is cut short there)
    (event,) = interrupt.events
    user, assistant = event.context
    question, answer = dict(world.LONG_EXCHANGES), assistant.text
    assert question[user.text] == answer
    assert assistant.span[0] < event.timespan[0] < assistant.span[1]
    # pointing: the question comes while pointing; the answer names the object and is among the options
    (event,) = point.events
    (question,) = event.context
    assert event.gesture[0] < question.time == event.timespan[0] < event.timespan[1] == event.gesture[1]
    assert question.text in world.POINT_QUESTIONS
    assert event.answer == f"That is the {event.target}."
    assert len(event.options) == 4 and event.target in event.options
    assert event.options[world.OPTION_LETTERS.index(event.choice)] == event.target
    assert {o.name for o in point.scene.objects} <= set(event.options)
    assert wake.turns == () and fall.turns == ()
    assert [e.answer for e in (wake.events + fall.events)] == [
        "Hello! How can I help you?",
        "Watch out, someone has fallen! Are you okay?",
    ]


def test_session_chains_events_with_their_own_clips():
    stream = world.generate_session(31)
    assert [e.behaviour for e in stream.events] == [
        Behaviour.WAKE_UP,
        Behaviour.GESTURE,
        Behaviour.VISUAL_REFERENCE,
        Behaviour.TERMINATION,
    ]
    clips = [e.clip for e in stream.events]
    assert clips[0][0] == 0.0 and clips[-1][1] == stream.duration_s
    assert all(a[1] == b[0] for a, b in itertools.pairwise(clips))  # the clips tile the stream
    for event in stream.events:
        start, end = event.clip
        assert start < event.gesture[0] and event.timespan[1] + world.TIMELY_MARGIN_S <= end
        assert all(start < t.span[0] for t in event.context)
    questions = [t.text for t in stream.turns if t.role == "user"]
    assert len(questions) == len(set(questions)) == 3
    ending = world.generate_session(31, steps=("wake_up", "fall"))
    assert [e.scenario for e in ending.events] == ["wake_up", "fall"]
    with pytest.raises(ValueError, match="last step"):
        world.generate_session(31, steps=("fall", "wake_up"))
    with pytest.raises(ValueError, match="unknown scenario"):
        world.generate("dance", 1)


def test_duration_is_honoured_or_refused():
    stream = world.generate("wake_up", 9, duration_s=20.0)
    assert stream.duration_s == 20.0 and len(stream.frames) == 200
    assert stream.events[0].timespan[1] + 2.0 <= 20.0
    with pytest.raises(ValueError, match="needs at least"):
        world.generate("interrupt", 9, duration_s=4.0)
    square = world.generate("point", 9, size=(128, 128), fps=15.0)
    assert square.frames[0][1].shape == (128, 128, 3)
    assert len(square.frames) == math.floor(square.duration_s * 15 + 1e-9)


def test_vocabulary_is_small_fixed_and_covers_every_text():
    vocabulary = world.vocabulary()
    assert list(vocabulary) == sorted(set(vocabulary)) and len(vocabulary) < 100
    assert {"red", "green", "blue", "yellow", "red ball", "That is the yellow cone.", "A."} <= set(vocabulary)
    texts = set()
    for stream in [*world.generate_set(21, seed=5, size=(64, 48), fps=1.0), world.generate_session(5, fps=1.0)]:
        texts |= (
            {t.text for t in stream.turns}
            | {e.answer for e in stream.events}
            | set(sum((e.options for e in stream.events), ()))
        )
    assert texts <= set(vocabulary)


# ---- what the frames show ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_each_event_changes_the_person_and_looks_unlike_the_others(seed):
    mids = {}
    for scenario in EVENT_SCENARIOS:
        stream = _clean(scenario, seed)
        (event,) = stream.events
        box = stream.scene.person.bbox()
        area = stream.scene.person.height**2  # changes are counted in squared body heights
        during = stream.frame_at(_mid(event))
        changed = _changed(during, stream.frame_at(_pre(event)), box)
        assert changed.sum() > 0.025 * area, f"{scenario}: the event barely changes the person"
        mids[scenario] = (during, box, area)
    for i, a in enumerate(EVENT_SCENARIOS):
        for b in EVENT_SCENARIOS[i + 1 :]:
            frame_a, box, area = mids[a]
            assert _changed(frame_a, mids[b][0], box).sum() > 0.012 * area, f"{a} and {b} look alike"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_none_stream_only_sways(seed):
    stream = _clean("none", seed)
    box = stream.scene.person.bbox()
    first = stream.frames[0][1]
    assert max(_changed(first, f, box).sum() for _, f in stream.frames) < 0.015 * stream.scene.person.height**2


@pytest.mark.parametrize("seed", SEEDS)
def test_wake_up_raises_one_hand_and_goodbye_both(seed):
    for scenario, sides in (("wake_up", 1), ("goodbye", 2)):
        stream = _clean(scenario, seed)
        person = stream.scene.person
        head_top = person.feet_y - person.height
        raised = _changed(stream.frame_at(_mid(stream.events[0])), _scenery(stream), person.bbox())
        raised[round(head_top) :] = False  # only what is above the head
        columns = np.nonzero(raised.any(axis=0))[0]
        left = (columns < person.x - 0.1 * person.height).any()
        right = (columns > person.x + 0.1 * person.height).any()
        assert int(left) + int(right) == sides, scenario


@pytest.mark.parametrize("seed", range(20, 32))
def test_pointing_arm_aims_at_the_named_object(seed):
    stream = _clean("point", seed)
    (event,) = stream.events
    scene = stream.scene
    target = next(o for o in scene.objects if o.name == event.target)
    side = 1 if target.centre[0] >= scene.person.x else -1
    shoulder = scene.person.to_image(render.REST, render.SHOULDER_R if side > 0 else render.SHOULDER_L)
    during, box = stream.frame_at(_mid(event)), scene.person.bbox(0.6)
    arm = _changed(during, stream.frame_at(_pre(event)), box) & _changed(during, _scenery(stream), box)
    ys, xs = np.nonzero(arm)
    outward = side * (xs - shoulder[0]) > 0  # the target's side of the body (the other hand sways)
    ys, xs = ys[outward], xs[outward]
    far = np.argmax(np.hypot(xs - shoulder[0], ys - shoulder[1]))  # the fingertip
    aim = math.atan2(ys[far] - shoulder[1], xs[far] - shoulder[0])

    def off(obj: render.SceneObject) -> float:
        angle = math.atan2(obj.centre[1] - shoulder[1], obj.centre[0] - shoulder[0])
        return abs((aim - angle + math.pi) % (2 * math.pi) - math.pi)

    assert math.degrees(off(target)) < 10
    assert min(scene.objects, key=off) == target
    assert event.answer == f"That is the {target.name}."


@pytest.mark.parametrize("seed", SEEDS)
def test_a_fallen_person_lies_horizontally_until_the_end(seed):
    stream = _clean("fall", seed)
    (event,) = stream.events
    scenery = _scenery(stream)
    whole = (0, 0, *stream.size)

    def extent(t: float) -> tuple[int, int]:
        ys, xs = np.nonzero(_changed(stream.frame_at(t), scenery, whole))
        return xs.max() - xs.min(), ys.max() - ys.min()

    width, height = extent(_pre(event))
    assert height > 1.5 * width
    for t in np.arange(event.label_window[0], stream.duration_s, 0.5):
        width, height = extent(t)
        assert width > 1.5 * height, t


def test_noise_and_distractor_are_on_by_default_and_off_when_clean():
    noisy, clean = world.generate("none", 4), _clean("none", 4)
    assert noisy.scene.camera is not None and clean.scene.camera is None and clean.scene.distractor is None
    diff = np.abs(noisy.frames[0][1].astype(float) - clean.frames[0][1].astype(float))
    assert diff.std() > 0.3 and diff.mean() < 40
    with_distractor = next(s for s in range(100) if world.layout(s).distractor is not None)
    stream = world.generate("none", with_distractor)
    scenery = _scenery(_clean("none", with_distractor))
    box = (0, 0, *stream.size)
    first, later = (_changed(stream.frame_at(t), scenery, box, level=60) for t in (0.0, 3.0))
    assert (first != later).sum() > 20  # it moved


# ---- audio ------------------------------------------------------------------------------------------------------


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_audio_carries_speech_and_thud_cues_over_background_noise():
    interrupt = world.generate("interrupt", 12)
    user = interrupt.events[0].context[0]
    rate = world.AUDIO_RATE
    speaking = interrupt.audio[round(user.span[0] * rate) : round(user.span[1] * rate)]
    quiet = interrupt.audio[round((interrupt.duration_s - 1.0) * rate) :]
    assert _rms(speaking) > 3 * _rms(quiet) > 0
    fall = world.generate("fall", 12)
    (_event,) = fall.events
    impact = next(a for a in fall.actions if a.kind == "fall")
    hit = round((impact.start + impact.fall_s) * rate)
    assert _rms(fall.audio[hit : hit + 2000]) > 5 * _rms(fall.audio[hit - 8000 : hit - 1000])


@pytest.mark.parametrize(("rate", "chunk", "dtype"), [(16_000, 1024, "float32"), (48_000, 512, "int16")])
def test_audio_chunks_are_stamped_microphone_chunks(rate, chunk, dtype):
    stream = world.generate("wake_up", 6)
    chunks = stream.audio_chunks(rate, chunk, dtype)
    assert len(chunks) == round(len(stream.audio) * rate / world.AUDIO_RATE) // chunk
    assert all(len(c) == chunk and c.dtype == np.dtype(dtype) for _, c in chunks)
    assert chunks[0][0] == stream.audio_start_ns
    assert all(b[0] - a[0] == pytest.approx(chunk * 1e9 / rate, abs=1) for a, b in itertools.pairwise(chunks))
    joined = np.concatenate([c for _, c in chunks]).astype(np.float32)
    if dtype == "int16":
        joined /= 32768
    if rate == world.AUDIO_RATE:
        assert np.array_equal(joined, stream.audio[: len(joined)])
    else:  # resampled: the same signal at three times the rate
        assert np.allclose(joined[::3][1000:-1000], stream.audio[1000 : len(joined) // 3 - 1000], atol=0.02)
    with pytest.raises(ValueError):
        stream.audio_chunks(44_100)


# ---- cost -------------------------------------------------------------------------------------------------------


def test_twenty_seconds_at_160x120_10fps_generate_in_well_under_a_second():
    world.generate("wake_up", 1, duration_s=20.0)  # warm-up (imports, caches)
    best = math.inf
    for _ in range(2):
        start = time.perf_counter()
        world.generate("thumbs_up", 2, duration_s=20.0)
        best = min(best, time.perf_counter() - start)
    assert best < 1.0


def test_importing_the_world_does_not_import_torch():
    code = (
        "import sys; import vispeak_ros.training.world, vispeak_ros.training.recordings; "
        "assert 'torch' not in sys.modules and 'rosbags' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
