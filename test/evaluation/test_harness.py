"""The harness: official frame sampling, the per-subtask layout, and `vispeak-eval run` end to end on synthetic clips
with the bundled demo checkpoint (official predictions format, sharding by RANK/WORLD_SIZE, resuming)."""

import json

import pytest

from vispeak_ros.evaluation import cli, harness, predictions, tasks
from vispeak_ros.evaluation.annotations import parse_item
from vispeak_ros.evaluation.frames import read_clip, sample_positions
from vispeak_ros.model.tokenizer import SpecialTokens

TOKENS = SpecialTokens(seg=1, pad=0, im_end=2, proactive=3, text_answer=4, audio_answer=5)
PROMPTS = {"vispeak": "sys prompt", "video": "offline video prompt"}


def words(text: str) -> list[int]:
    """A word-level encoder for layout arithmetic: one id (>= 10) per word."""
    return [10 + len(w) for w in text.split()]


def test_official_sampling_one_per_second_at_most_64_at_least_4():
    assert sample_positions(300, 30.0, None, None) == list(range(0, 300, 30))  # every round(fps)-th frame
    assert sample_positions(300, 29.97, 2.5, 6.0) == [74, 104, 134, 164]  # int(2.5 * 29.97) .. int(6.0 * 29.97)
    many = sample_positions(2729, 30.0, None, None)
    assert len(many) == 64 and many[0] == 0 and many[-1] == 2700  # 91 one-per-second frames thinned to 64
    assert sample_positions(30, 30.0, 0.0, 0.44) == [0, 4, 8, 13]  # under 4: 4 evenly spaced frames of the range
    assert sample_positions(10, 10.0, 0.0, 100.0) == [0, 3, 6, 9]  # the end is capped at the last frame (9)


def item(code: str, turns: list[dict], **extra) -> object:
    return parse_item(tasks.get_task(code), 0, {"video": "c.mp4", "conversations": turns, **extra}, "test")


ASK = {"from": "human", "value": "how are you", "time": 1.0}
PREVIOUS = {"from": "gpt", "value": "fine thanks", "time": 1.1}
ANSWER = {"from": "gpt", "value": "bye", "time": 3.0, "timespan": [2.5, 3.5]}


def test_layout_proactive_tasks_start_at_the_first_frame():
    plan = harness.build_plan(item("vw", [ANSWER]), [0.0, 1.0, 2.0], 5, words, TOKENS, PROMPTS)
    assert plan.system_ids == [*words("sys prompt"), TOKENS.seg]
    assert [b.kind for b in plan.blocks] == ["frame"] * 3 and plan.ends == [8, 13, 18]
    assert plan.start == 0 and set(plan.agent) == {TOKENS.pad}


def test_layout_termination_prefills_the_previous_answer_and_starts_after_it():
    plan = harness.build_plan(item("vt", [ASK, PREVIOUS, ANSWER]), [0.0, 1.0, 2.0, 3.0], 5, words, TOKENS, PROMPTS)
    # frames before a text at the same time: frame 0.0, frame 1.0, "how are you" (3 ids + seg), frame 2.0, frame 3.0
    assert [(b.kind, b.time) for b in plan.blocks] == [("frame", 0.0), ("frame", 1.0), ("text", 1.0),
                                                       ("frame", 2.0), ("frame", 3.0)]  # fmt: skip
    assert plan.ends == [8, 13, 17, 22, 27]
    answer = [TOKENS.text_answer, *words("fine thanks"), TOKENS.im_end]
    assert plan.agent[17:21] == answer and set(plan.agent[:17] + plan.agent[21:]) == {TOKENS.pad}
    assert plan.start == 3  # the first block whose seg (row 21) comes after the pre-filled answer (rows 17..20)


def test_layout_interruption_starts_right_after_the_question():
    long_previous = {**PREVIOUS, "value": "one two three four five six seven eight nine ten"}
    plan = harness.build_plan(item("vi", [ASK, long_previous, ANSWER]), [0.0, 1.0, 2.0, 3.0], 5, words, TOKENS,
                              PROMPTS)  # fmt: skip
    assert plan.start == 3  # the frame after the question, whatever the answer's length
    assert plan.agent[17] == TOKENS.text_answer and plan.ends[plan.start] == 22  # the model sees rows 17..21 of it


def test_layout_visual_reference_asks_last_with_the_offline_video_prompt():
    vr = parse_item(tasks.get_task("vr"), 0, {"video": "r.mp4", "questions": "what is it A. x B. y", "ans": "A",
                                              "ans_full": "x", "video_start_time": 0.0, "video_end_time": 1.0},
                    "test")  # fmt: skip
    plan = harness.build_plan(vr, [0.0, 0.3, 0.6, 0.9], 5, words, TOKENS, PROMPTS)
    assert plan.system_ids[:3] == words("offline video prompt") and plan.blocks[-1].kind == "text"
    assert plan.start == len(plan.blocks) - 1


# ------------------------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """Two Wake-Up clips as mp4 videos and one Termination clip as a rosbag2 recording, with their annotations."""
    from vispeak_ros.training import recordings, world

    root = tmp_path_factory.mktemp("bench")
    media, ann = root / "media", root / "ann"
    media.mkdir()
    ann.mkdir()
    wakes = [world.generate("wake_up", 1_000_000_000 + i, split="heldout", size=(96, 72), fps=10) for i in (0, 1)]
    for stream in wakes:
        recordings.write_video(stream, media / f"{stream.name}.mp4")
    recordings.write_annotations(wakes, ann / "Visual_Wake-Up.json", "Visual_Wake-Up", video_pattern="{name}.mp4")
    bye = world.generate("goodbye", 1_000_000_002, split="heldout", size=(96, 72), fps=10)
    recordings.write_bag(bye, media / bye.name, storage="mcap")  # found for "<name>.mp4" as a bag of that stem
    recordings.write_annotations([bye], ann / "Visual_Termination.json", "Visual_Termination",
                                 video_pattern="{name}.mp4")  # fmt: skip
    return root, media, ann


def test_bag_and_video_give_the_official_one_per_second_frames(bench):
    _, media, ann = bench
    wake = json.loads((ann / "Visual_Wake-Up.json").read_text())[0]
    clip = read_clip(media / wake["video"], wake["video_start_time"], wake["video_end_time"])
    assert clip.times == [float(t) for t in range(len(clip.times))] and clip.frames[0].shape == (72, 96, 3)
    assert read_clip(media / wake["video"], 2.0, 5.0).times == [2.0, 3.0, 4.0, 5.0]  # seconds of the whole video
    assert read_clip(media / wake["video"], 2.0, 2.5).times == [2.0, 2.1, 2.3, 2.5]  # under 4: spread over the range
    bye = json.loads((ann / "Visual_Termination.json").read_text())[0]
    bag_clip = read_clip(media / bye["video"].removesuffix(".mp4"), bye.get("video_start_time"), None)
    assert bag_clip.times[:3] == [0.0, 1.0, 2.0]


def run_cli(bench, out, *extra):
    _, media, ann = bench
    return cli.main(["run", "--annotations", str(ann), "--videos", str(media), "--output", str(out), *extra])


def test_run_shards_by_rank_writes_official_predictions_and_resumes(bench, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert run_cli(bench, out) == 0  # rank 1 of 2: the second Wake-Up clip only
    said = capsys.readouterr().out
    assert "1 clips run by rank 1/2" in said and "no subtask complete yet" in said
    assert not predictions.output_path(out, "Visual_Wake-Up").exists()
    monkeypatch.setenv("RANK", "0")
    assert run_cli(bench, out) == 0  # rank 0: the first Wake-Up clip and the Termination bag; both files complete
    assert "2 clips run by rank 0/2" in capsys.readouterr().out
    _, _, ann = bench
    for name in ("Visual_Wake-Up", "Visual_Termination"):
        expected = [entry["video"] for entry in json.loads((ann / f"{name}.json").read_text())]
        data = json.loads(predictions.output_path(out, name).read_text())
        assert [next(iter(entry)) for entry in data] == expected  # annotation order, keyed by the video
        for entry in data:
            (text, when), = entry.values()  # fmt: skip
            assert isinstance(text, str) and (when is None or isinstance(when, float))
    # Whether the demo model greets these 96x72 waves is model quality (README, "The demo model"), not the harness's.
    wake = json.loads(predictions.output_path(out, "Visual_Wake-Up").read_text())
    logs = sorted(p.name for p in out.glob("*.jsonl"))
    assert logs == ["Visual_Termination_output.rank0.jsonl", "Visual_Wake-Up_output.rank0.jsonl",
                    "Visual_Wake-Up_output.rank1.jsonl"]  # fmt: skip
    before = {p: p.read_text() for p in out.glob("*.jsonl")}
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    predictions.output_path(out, "Visual_Wake-Up").unlink()
    assert run_cli(bench, out) == 0  # a second run does no work: it only merges what the logs hold
    assert "0 clips run by rank 0/1" in capsys.readouterr().out
    assert {p: p.read_text() for p in out.glob("*.jsonl")} == before
    assert json.loads(predictions.output_path(out, "Visual_Wake-Up").read_text()) == wake
    assert cli.main(["score", "--annotations", str(bench[2]), "--output", str(out)]) == 0
    table = capsys.readouterr().out
    assert "Visual Wake-Up" in table and "no text score" in table


def test_official_quirks_report_a_silent_clip_at_the_loops_first_timestamp(bench, tmp_path, capsys):
    """A threshold no probability sum can reach (3 probabilities never sum above 3.0) keeps every clip silent."""
    out = tmp_path / "quirks"
    assert run_cli(bench, out, "--tasks", "vw", "--official-quirks", "--limit", "1", "--threshold", "3.0") == 0
    (text, when), = json.loads(predictions.output_path(out, "Visual_Wake-Up").read_text())[0].values()  # fmt: skip
    assert text == "" and when == 8.0  # the clip's last frame: the released loop starts its time there
    assert run_cli(bench, out, "--tasks", "vw", "--limit", "1") == 0  # the same records, fixed convention
    (text, when), = json.loads(predictions.output_path(out, "Visual_Wake-Up").read_text())[0].values()  # fmt: skip
    assert text == "" and when is None
    assert "0 clips run" in capsys.readouterr().out


def test_run_refuses_missing_media_with_one_line(bench, tmp_path, capsys):
    _, _, ann = bench
    code = cli.main(["run", "--annotations", str(ann), "--videos", str(tmp_path), "--output", str(tmp_path / "o"),
                     "--tasks", "vw"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 of 2 clips have no video or recording" in err[0]


def test_an_undecodable_clip_is_skipped_and_reported_while_the_others_are_saved(bench, tmp_path, capsys):
    _, media, ann = bench
    broken = tmp_path / "media"
    broken.mkdir()
    for path in media.glob("*.mp4"):
        (broken / path.name).write_bytes(path.read_bytes())
    first = json.loads((ann / "Visual_Wake-Up.json").read_text())[0]["video"]
    (broken / first).write_bytes(b"not a video")
    out = tmp_path / "o"
    args = ["run", "--annotations", str(ann), "--videos", str(broken), "--output", str(out), "--tasks", "vw"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert f"skipped Visual_Wake-Up {first}" in err and "1 clips could not be read" in err
    assert len(predictions.done_records(out, "Visual_Wake-Up")) == 1  # the readable clip is kept for the rerun
    assert not predictions.output_path(out, "Visual_Wake-Up").exists()


def test_distributed_environment_is_validated(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK 2 / WORLD_SIZE 2 are inconsistent"):
        harness.distributed()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="RANK must be an integer"):
        harness.distributed()


@pytest.mark.slow  # two fresh interpreters import torch (about 8 s on 2 idle cores)
def test_worker_processes_split_the_clips_and_write_one_log_each(bench, tmp_path, capsys):
    out = tmp_path / "workers"
    assert run_cli(bench, out, "--tasks", "vw", "--workers", "2") == 0
    assert "2 clips run by rank 0/1" in capsys.readouterr().out
    logs = sorted(p.name for p in out.glob("*.jsonl"))
    assert logs == ["Visual_Wake-Up_output.rank0.jsonl", "Visual_Wake-Up_output.rank1.jsonl"]
    assert len(json.loads(predictions.output_path(out, "Visual_Wake-Up").read_text())) == 2
