"""vispeak-replay's other sources (video + wav at any rate and channel count) and its one-line errors."""

import json
import math
import subprocess
import sys
import wave
from collections import Counter

import numpy as np
import pytest

from vispeak_ros import data
from vispeak_ros.tools import replay
from vispeak_ros.tools.bag_source import open_recording, read_segments
from vispeak_ros.tools.replay_video import VideoRecording
from vispeak_ros.training import recordings, world


@pytest.fixture(scope="module")
def stream():
    return world.generate("thumbs_up", seed=5, size=(96, 72), fps=10)


def _stereo_44k(mono_16k: np.ndarray, path) -> None:
    """The stream's audio as 44.1 kHz stereo int16 (left = signal, right = half of it)."""
    t_out = np.arange(round(len(mono_16k) * 44_100 / 16_000)) / 44_100
    left = np.interp(t_out, np.arange(len(mono_16k)) / 16_000, mono_16k)
    pcm = np.round(np.clip(np.stack([left, left / 2], axis=1), -1, 0.99) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44_100)
        out.writeframes(pcm.tobytes())


def test_a_video_with_a_stereo_44k_wav_gives_one_complete_segment_per_second(stream, tmp_path):
    video, wav = recordings.write_video(stream, tmp_path / "clip.mp4")
    _stereo_44k(stream.audio, wav)
    source = VideoRecording(video)
    assert source.audio_path == wav and source.kind == "video + wav"
    segments = list(source.segments())
    assert len(segments) == math.ceil(stream.duration_s)
    assert all(s.frame is not None and s.frame.shape == (72, 96, 3) for s in segments)
    assert all(s.audio_coverage == 1.0 for s in segments[:-1])
    # the resampled, down-mixed audio is the stream's own: mono average of (x, x/2) = 0.75 x
    heard = np.concatenate([s.audio for s in segments])[: len(stream.audio)]
    reference = 0.75 * stream.audio[: len(heard)]
    assert np.corrcoef(heard[1000:-1000], reference[1000:-1000])[0, 1] > 0.99


def test_a_video_replays_into_a_recording_of_what_the_model_saw(stream, tmp_path):
    video, _ = recordings.write_video(stream, tmp_path / "clip.mp4")
    result = replay.replay(video, output_dir=tmp_path / "out", out=None, progress=False)
    counts = Counter(c.topic for c, _, _ in open_recording(result.bag).messages())
    seconds = math.ceil(stream.duration_s)
    assert counts["/camera/image_raw/compressed"] == seconds and counts["/audio"] == seconds
    assert counts["/vispeak/informative"] == seconds
    again = list(read_segments(result.bag))  # the output is a recording the replay reads again
    assert len(again) == seconds and all(s.frame is not None and s.audio_coverage == 1.0 for s in again[:-1])


def _no_camera_bag(stream, path):
    from rosbags.rosbag2 import StoragePlugin, Writer

    from vispeak_ros.ros import audio_common

    store = audio_common.typestore("mgonzs13")
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {}
        for record, topic, msgtype, msg in recordings.bag_messages(stream, store):
            if topic.startswith("/camera"):
                continue
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(connections[topic], record, store.serialize_cdr(msg, msgtype))
    return path


def _unknown_storage(tmp_path):
    folder = tmp_path / "odd_bag"
    folder.mkdir()
    (folder / "metadata.yaml").write_text(
        "rosbag2_bagfile_information:\n  version: 9\n  storage_identifier: rosbag_v1\n  relative_file_paths: []\n"
    )
    return folder


def _not_mcap(tmp_path):
    path = tmp_path / "noise.mcap"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def _damaged_sqlite(stream, tmp_path):
    folder = recordings.write_bag(stream, tmp_path / "sq", storage="sqlite3")
    db = next(folder.glob("*.db3"))
    db.write_bytes(b"this is no database" * 100)
    return folder


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda s, t: t / "missing_bag", "recording not found: {path}"),
        (lambda s, t: _no_camera_bag(s, t / "audio_only"), "{path}: no camera topic"),
        (lambda s, t: _unknown_storage(t), "{path}: unknown storage 'rosbag_v1' in metadata.yaml"),
        (lambda s, t: _not_mcap(t), "{path}: not an MCAP file"),
        (lambda s, t: _damaged_sqlite(s, t), "{path}: cannot open as a rosbag2 sqlite3 recording"),
    ],
    ids=["missing", "no-camera", "unknown-storage", "not-mcap", "damaged-sqlite"],
)
def test_bad_input_is_one_line_naming_the_file_and_the_reason(stream, tmp_path, capsys, make, expected):
    path = make(stream, tmp_path)
    code = replay.main([str(path), "--output-dir", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0].startswith(f"vispeak-replay: error: {expected.format(path=path)}"), err[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.vispeak.mcap"))


def test_missing_or_unmatched_annotations_are_one_clear_error(tmp_path, capsys):
    recording = str(data.demo_recording())
    assert replay.main([recording, "--annotations", str(tmp_path / "none.json"), "--output-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == f"vispeak-replay: error: annotations not found: {tmp_path / 'none.json'}"
    other = tmp_path / "Visual_Wake-Up.json"
    other.write_text(json.dumps([{"video": "someone_else.mp4", "conversations": []}]))
    assert replay.main([recording, "--annotations", str(other), "--output-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"vispeak-replay: error: {other}: no annotations for recording 'demo_recording'")


def test_the_command_line_fails_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "vispeak_ros.tools.replay", str(tmp_path / "nothing.mcap")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"vispeak-replay: error: recording not found: {tmp_path / 'nothing.mcap'}"
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_timeline_page_is_self_contained(tmp_path):
    from vispeak_ros.tools.timeline import AnswerMark, ScorePoint, Window, timeline_html

    scores = [ScorePoint(t, 0.5 if t == 5 else 0.01, 0.5 if t in (5, 6, 7) else 0.02, t == 5) for t in range(12)]
    page = timeline_html(scores, 0.35, [AnswerMark(5, "Hello <there>!", "WAKE_UP")], [Window(4, 6, "wake_up")], "t")
    assert page.startswith("<!DOCTYPE html>") and page.count("<rect") >= 12 + 2
    assert "Hello &lt;there&gt;!" in page and "wake_up" in page and "threshold 0.35" in page
    assert "<script" not in page and "src=" not in page and "href" not in page


def test_the_launch_file_runs_vispeak_replay_with_documented_arguments():
    import ast
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "launch" / "replay.launch.py"
    tree = ast.parse(path.read_text())
    arguments = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "ARGUMENTS")
    declared = {item.elts[0].value: (item.elts[1].value, item.elts[2].value) for item in arguments.elts}
    assert {"bag", "checkpoint", "output_dir", "mode"} <= set(declared)
    assert declared["mode"][0] == "fast" and all(description for _, description in declared.values())
    parser = replay.build_parser()  # every option the launch file passes exists on the command line
    options = {o for action in parser._actions for o in action.option_strings}
    assert {"--checkpoint", "--output-dir", "--mode", "--rate"} <= options
    assert declared["mode"][0] in replay.MODES


def test_the_launch_file_builds_a_launch_description_where_ros_is_installed():
    from pathlib import Path

    pytest.importorskip("launch_ros", reason="ROS 2 launch is not installed here (runs on a robot)")
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "launch" / "replay.launch.py"
    spec = importlib.util.spec_from_file_location("replay_launch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert len(description.entities) == len(module.ARGUMENTS) + 1


def test_a_malformed_remap_is_refused_before_anything_runs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        replay.main([str(data.demo_recording()), "--mode", "paced", "--remap", "audio=mic"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "vispeak-replay: error: --remap 'audio=mic': expected /from:=/to"
    )
