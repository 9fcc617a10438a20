"""The real ViSpeak-Bench annotation files load completely; malformed files are refused with one clear line."""

import json
from pathlib import Path

import pytest

from vispeak_ros.evaluation import annotations, tasks
from vispeak_ros.evaluation.annotations import AnnotationError

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT.parent / "shared" / "data" / "vispeak_bench" / "annotations"
COUNTS = {"aw": 200, "gu": 200, "hr": 100, "vi": 100, "vr": 200, "vt": 100, "vw": 100}


@pytest.fixture(scope="module")
def bench():
    if not BENCH.is_dir():
        pytest.skip(f"ViSpeak-Bench annotations not present at {BENCH}")
    return annotations.load_all(BENCH)


def test_every_real_annotation_file_loads(bench):
    assert {tasks.BY_NAME[name].code: len(items) for name, items in bench.items()} == COUNTS
    assert sum(len(items) for items in bench.values()) == 1000


def test_real_items_carry_what_the_harness_and_scorer_need(bench):
    for name, items in bench.items():
        task = tasks.BY_NAME[name]
        for item in items:
            assert item.video.startswith(("Anomaly", "Gesture", "Humor", "Visual"))
            if task.timed:
                t1, t2 = item.timespan
                assert 0 <= t1 <= t2 and item.reference
            else:
                assert item.reference in "ABCDE" and item.option_text in item.question
                assert item.texts[0][0] == 100000.0  # the question is fed after every frame
            if task.driving in ("interrupt", "prefilled"):
                assert item.prefill and item.texts  # a question and the previous answer to pre-fill
    gesture = bench["Gesture_Understanding"][0]
    assert gesture.gesture == "Finger Heart" and gesture.texts[0][0] == 0.0
    termination = bench["Visual_Termination"][0]
    assert termination.start_time == 9.0 and termination.end_time is None and termination.timespan == (18.1, 20.0)
    wake = bench["Visual_Wake-Up"][0]
    assert (wake.start_time, wake.end_time) == (0.0, 9.0)


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_missing_file_and_broken_json_are_named(tmp_path):
    with pytest.raises(AnnotationError, match="no annotation file for Visual_Wake-Up"):
        annotations.load_task(tmp_path, tasks.get_task("vw"))
    write(tmp_path, "Visual_Wake-Up.json", "[{")
    with pytest.raises(AnnotationError, match=r"Visual_Wake-Up.json: not valid JSON"):
        annotations.load_task(tmp_path, tasks.get_task("vw"))


def test_a_missing_timespan_names_the_item_and_video(tmp_path):
    item = {"video": "a.mp4", "conversations": [{"from": "gpt", "value": "Hi", "time": 1.0}]}
    write(tmp_path, "Visual_Wake-Up.json", [item])
    with pytest.raises(AnnotationError, match=r"item 0 \(a.mp4\): the last turn needs a 'timespan'"):
        annotations.load_task(tmp_path, tasks.get_task("vw"))


def test_duplicate_videos_and_bad_letters_are_refused(tmp_path):
    turn = {"from": "gpt", "value": "Hi", "time": 1.0, "timespan": [0, 2]}
    write(tmp_path, "Visual_Wake-Up.json", [{"video": "a.mp4", "conversations": [turn]}] * 2)
    with pytest.raises(AnnotationError, match="appears twice"):
        annotations.load_task(tmp_path, tasks.get_task("vw"))
    vr = {"video": "r.mp4", "questions": "What? A. x B. y", "ans": "F", "ans_full": "x"}
    write(tmp_path, "Visual_Reference.json", [vr])
    with pytest.raises(AnnotationError, match="'ans' must be one of A-E"):
        annotations.load_task(tmp_path, tasks.get_task("vr"))


def test_tasks_are_found_by_name_code_or_label():
    assert tasks.get_task("Visual Wake-Up") is tasks.get_task("vw") is tasks.BY_NAME["Visual_Wake-Up"]
    assert [t.code for t in tasks.select("vt, aw")] == ["aw", "vt"]
    with pytest.raises(ValueError, match="unknown subtask 'xx'"):
        tasks.get_task("xx")
