"""Scores from hand-made annotation and prediction files, with the answers worked out by hand."""

import json

import pytest

from vispeak_ros.evaluation import cli, scoring, tasks
from vispeak_ros.evaluation.annotations import load_task
from vispeak_ros.evaluation.predictions import Prediction, PredictionError, read_predictions
from vispeak_ros.evaluation.scoring import PAPER_OVERALL, PAPER_TABLE, in_time, overall_from_table

WAKE = tasks.get_task("vw")
REFERENCE = tasks.get_task("vr")


def wake_item(video, t1, t2):
    answer = {"from": "gpt", "value": "Hello, how can I help?", "time": t1, "timespan": [t1, t2]}
    return {
        "video": video,
        "task_type": "Visual Wake-Up",
        "video_start_time": 0.0,
        "video_end_time": 9.0,
        "proactive": True,
        "conversations": [answer],
    }


# video: (timespan, prediction [text, time]) and whether it is in time by default / with the official quirks
CASES = {
    "a.mp4": ((-1.0, 3.0), ["Hello!", -0.5], False, False),  # max(0, t1) = 0 > -0.5
    "b.mp4": ((5.0, 8.0), ["Hi there", 10.0], True, True),  # t2 + 2.0, inclusive
    "c.mp4": ((5.0, 8.0), ["Hi there", 10.001], False, False),  # just after t2 + 2.0
    "d.mp4": ((5.0, 8.0), ["Welcome", 5.0], True, True),  # t1, inclusive
    "e.mp4": ((2.0, 4.0), ["", None], False, False),  # no answer
    "f.mp4": ((2.0, 4.0), ["", 3.0], False, True),  # no answer, reported at a time as the released harness does
    "g.mp4": ((0.0, 1.0), ["Good morning", 0.0], True, True),
}
VERDICTS = {"b.mp4": 4.0, "d.mp4": 5.0, "g.mp4": 3.0, "f.mp4": 1.0}


@pytest.fixture()
def wake_files(tmp_path):
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "Visual_Wake-Up.json").write_text(json.dumps([wake_item(v, *c[0]) for v, c in CASES.items()]))
    out = tmp_path / "out"
    out.mkdir()
    (out / "Visual_Wake-Up_output.json").write_text(json.dumps([{v: c[1]} for v, c in CASES.items()]))
    verdicts = {v: {"score": s, "text": CASES[v][1][0]} for v, s in VERDICTS.items()}
    (out / "Visual_Wake-Up_verdicts.json").write_text(json.dumps({"verdicts": verdicts}))
    return ann, out


def test_window_bounds_are_inclusive_with_max0_t1_and_a_2s_margin():
    assert in_time(0.0, (-3.0, 1.0)) and not in_time(-0.1, (-3.0, 1.0))
    assert in_time(3.0, (1.0, 1.0)) and not in_time(3.0001, (1.0, 1.0))
    assert in_time(1.0, (1.0, 1.0)) and not in_time(0.999, (1.0, 1.0))
    assert not in_time(None, (0.0, 10.0))


def test_wake_up_scores_worked_out_by_hand(wake_files):
    ann, out = wake_files
    items = load_task(ann, WAKE)
    predictions = read_predictions(out / "Visual_Wake-Up_output.json")
    verdicts = {v: {"score": s, "text": CASES[v][1][0]} for v, s in VERDICTS.items()}
    row = scoring.score_task(WAKE, items, predictions, verdicts)
    assert [v for v, c in CASES.items() if c[2]] == ["b.mp4", "d.mp4", "g.mp4"]
    assert (row.items, row.answered, row.time_correct, row.judged) == (7, 5, 3, 3)
    assert row.time_accuracy == pytest.approx(3 / 7)
    assert row.text_score == pytest.approx((4 + 5 + 3) / 3)  # averaged over the in-time answers only
    assert row.score == pytest.approx(3 / 7 * 4.0)


def test_official_quirks_count_the_empty_answer_reported_at_a_time(wake_files):
    ann, out = wake_files
    items = load_task(ann, WAKE)
    predictions = read_predictions(out / "Visual_Wake-Up_output.json")
    verdicts = {v: {"score": s, "text": CASES[v][1][0]} for v, s in VERDICTS.items()}
    row = scoring.score_task(WAKE, items, predictions, verdicts, official_quirks=True)
    assert (row.time_correct, row.judged) == (4, 4)
    assert row.text_score == pytest.approx((4 + 5 + 3 + 1) / 4)
    assert row.score == pytest.approx(4 / 7 * 13 / 4)


def test_missing_verdicts_are_left_out_by_default_and_count_zero_with_quirks(wake_files):
    ann, out = wake_files
    items = load_task(ann, WAKE)
    predictions = read_predictions(out / "Visual_Wake-Up_output.json")
    verdicts = {"b.mp4": {"score": 4.0, "text": "Hi there"}}
    fixed = scoring.score_task(WAKE, items, predictions, verdicts)
    assert fixed.text_score == 4.0 and fixed.judged == 1 and "2 in-time answers have no verdict" in fixed.notes[0]
    quirky = scoring.score_task(WAKE, items, predictions, verdicts, official_quirks=True)
    assert quirky.text_score == pytest.approx(4.0 / 4)
    stale = scoring.score_task(WAKE, items, predictions, {"b.mp4": {"score": 4.0, "text": "another answer"}})
    assert stale.judged == 0 and any("another answer text" in n for n in stale.notes)
    nothing = scoring.score_task(WAKE, items, predictions, {})
    assert nothing.text_score is None and nothing.score is None and "no text score" in nothing.notes[-1]
    unjudged = scoring.score_task(WAKE, items, predictions, {}, official_quirks=True)
    assert unjudged.text_score is None and unjudged.judged == 0  # no judge ran at all: no text score, not zeros


def test_denominator_duplicates_and_unknown_videos(wake_files):
    ann, out = wake_files
    items = load_task(ann, WAKE)
    some = read_predictions(out / "Visual_Wake-Up_output.json")[:2]  # a.mp4 (too early) and b.mp4 (in time)
    fixed = scoring.score_task(WAKE, items, some)
    assert fixed.items == 7 and fixed.time_accuracy == pytest.approx(1 / 7)
    quirky = scoring.score_task(WAKE, items, some, official_quirks=True)
    assert quirky.items == 2 and quirky.time_accuracy == pytest.approx(1 / 2)
    twice = [*some, some[1]]
    with pytest.raises(PredictionError, match=r"two predictions for 'b.mp4'"):
        scoring.score_task(WAKE, items, twice)
    assert scoring.score_task(WAKE, items, twice, official_quirks=True).time_accuracy == pytest.approx(2 / 3)
    stranger = [Prediction("zzz.mp4", "hi", 1.0)]
    with pytest.raises(PredictionError, match="not in the annotations"):
        scoring.score_task(WAKE, items, stranger)


QUESTION = "What is this? A. Bicycle B. Conical C. Electric scooter D. Fan\n\nThe best option is:"


def test_visual_reference_letters_released_rule_quirks_and_strict(tmp_path):
    answers = {
        "1.mp4": ("B", "B"),
        "2.mp4": ("Best answer: C", "C"),
        "3.mp4": ("Based on the video, it is a Fan.", "D"),
        "4.mp4": ("", "A"),
    }
    items = [
        {
            "video": v,
            "task_type": "Visual Reference",
            "video_start_time": 0.0,
            "video_end_time": 1.0,
            "proactive": False,
            "questions": QUESTION,
            "ans": gt,
            "ans_full": "x",
        }
        for v, (_, gt) in answers.items()
    ]
    (tmp_path / "Visual_Reference.json").write_text(json.dumps(items))
    loaded = load_task(tmp_path, REFERENCE)
    predictions = [Prediction(v, text, 1.0) for v, (text, _) in answers.items()]
    fixed = scoring.score_task(REFERENCE, loaded, predictions)
    # "B" right; "Best answer: C" -> C once the lead-in is dropped; "Based ..." reads as B (first capital A-E)
    assert fixed.vr_accuracy == 0.5 and fixed.score == 2.5
    quirky = scoring.score_task(REFERENCE, loaded, predictions, official_quirks=True)
    assert quirky.vr_accuracy == 0.25  # the fused lead-ins leave "Best answer:" in place: B
    assert fixed.vr_strict_accuracy == 0.75  # the strict reading finds C and the named option "Fan" (D)
    assert scoring.options(QUESTION) == {"A": "Bicycle", "B": "Conical", "C": "Electric scooter", "D": "Fan"}


def test_the_papers_overall_from_its_per_subtask_table():
    for model, expected in PAPER_OVERALL.items():
        table = PAPER_TABLE[model]
        assert round(overall_from_table(table["time_accuracy"], table["text_score"]), 2) == expected
    assert overall_from_table(PAPER_TABLE["ViSpeak"]["time_accuracy"], PAPER_TABLE["ViSpeak"]["text_score"]) == (
        pytest.approx(2.758, abs=1e-3)
    )


def test_overall_is_the_mean_of_seven_and_says_what_is_missing():
    rows = [scoring.TaskScore(t.name, t.code, 1, score=float(i)) for i, t in enumerate(tasks.TASKS)]
    assert scoring.overall(rows) == (pytest.approx(3.0), "")
    rows[0].score = None
    value, why = scoring.overall(rows)
    assert value is None and "Anomaly_Warning" in why


def test_score_command_prints_the_table_and_writes_json(wake_files, capsys):
    ann, out = wake_files
    assert cli.main(["score", "--annotations", str(ann), "--output", str(out), "--json", str(out / "s.json")]) == 0
    text = capsys.readouterr().out
    assert "Visual Wake-Up" in text and "42.9%" in text and "1.71" in text
    assert "with the official quirks: vw 1.86 57.1% | overall -" in text  # both rule sets are reported
    data = json.loads((out / "s.json").read_text())
    assert data["subtasks"]["Visual_Wake-Up"]["score"] == pytest.approx(3 / 7 * 4.0)
    assert data["overall"] is None and "missing: Anomaly_Warning" in data["overall_note"]  # needs all seven
    assert data["other_rules"]["subtasks"]["Visual_Wake-Up"]["score"] == pytest.approx(4 / 7 * 13 / 4)
    assert cli.main(["score", "--annotations", str(ann), "--output", str(out), "--official-quirks"]) == 0
    assert "57.1%" in capsys.readouterr().out


def test_malformed_predictions_are_named(tmp_path, capsys):
    path = tmp_path / "Visual_Wake-Up_output.json"
    path.write_text(json.dumps([{"a.mp4": ["hi", "soon"]}]))
    with pytest.raises(PredictionError, match=r"entry 0 \(a.mp4\): response time must be a number or null"):
        read_predictions(path)
    path.write_text(json.dumps({"a.mp4": ["hi", 1.0]}))
    with pytest.raises(PredictionError, match="expected a JSON list"):
        read_predictions(path)


def test_the_real_annotations_score_predictions_made_elsewhere(tmp_path, capsys):
    """Answers on every window's last inclusive instant (t2 + 2.0), the right letters, verdicts of 3: each timed
    subtask scores 1.0 x 3, Visual Reference 5.0, overall (6 x 3 + 5) / 7."""
    from pathlib import Path

    bench = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vispeak_bench" / "annotations"
    if not bench.is_dir():
        pytest.skip(f"ViSpeak-Bench annotations not present at {bench}")
    from vispeak_ros.evaluation.annotations import load_all

    for name, items in load_all(bench).items():
        if items[0].task.timed:
            entries = [{i.video: [f"answer {i.index}", i.timespan[1] + 2.0]} for i in items]
            verdicts = {i.video: {"score": 3.0, "text": f"answer {i.index}"} for i in items}
            (tmp_path / f"{name}_verdicts.json").write_text(json.dumps({"verdicts": verdicts}))
        else:
            entries = [{i.video: [f"{i.reference}. {i.option_text}", 1.0]} for i in items]
        (tmp_path / f"{name}_output.json").write_text(json.dumps(entries))
    assert (
        cli.main(["score", "--annotations", str(bench), "--output", str(tmp_path), "--json", str(tmp_path / "s")]) == 0
    )
    data = json.loads((tmp_path / "s").read_text())
    assert data["overall"] == pytest.approx((6 * 3.0 + 5.0) / 7)
    rows = data["subtasks"]
    assert rows["Anomaly_Warning"]["items"] == 200 and rows["Anomaly_Warning"]["time_accuracy"] == 1.0
    assert rows["Visual_Reference"]["vr_accuracy"] == 1.0 and rows["Visual_Reference"]["vr_strict_accuracy"] == 1.0
    assert "overall" in capsys.readouterr().out
