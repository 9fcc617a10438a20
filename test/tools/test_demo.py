"""vispeak-demo runs the assistant with the bundled demo model on the bundled recording, from any directory."""

import io
import subprocess
import sys

import pytest

from vispeak_ros import data
from vispeak_ros.tools import demo


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("demo")
    out = io.StringIO()
    answers = demo.run(data.demo_recording(), "", out_dir, data.demo_annotations(), out=out)
    return out_dir, out.getvalue().splitlines(), answers


def test_demo_greets_the_wave_in_time_and_says_what_it_saw(demo_run):
    _, lines, answers = demo_run
    assert answers >= 1
    assert any(line.strip().startswith("event WAKE_UP") for line in lines)
    wake = next(line for line in lines if line.startswith("ground truth") and "WAKE_UP" in line)
    assert "answered at" in wake
    assert lines[-1].startswith(f"done: {answers} answers")


def test_demo_writes_a_recording_and_a_timeline_picture(demo_run):
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    out_dir, _, answers = demo_run
    picture = out_dir / "demo_recording.timeline.png"
    assert picture.stat().st_size > 10_000
    with AnyReader([out_dir / "demo_recording.vispeak"], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as bag:
        counts = {c.topic: c.msgcount for c in bag.connections}
    assert counts["/vispeak/informative"] >= 55  # one per second of the one-minute recording
    assert counts["/vispeak/events"] >= 1 and counts["/vispeak/feedback"] >= 2 * answers - 1


def test_demo_replaces_its_own_output_but_not_foreign_files(tmp_path):
    foreign = tmp_path / "demo_recording.vispeak"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an earlier vispeak-demo output"):
        demo._prepare_output(tmp_path, "demo_recording")
    (foreign / "notes.txt").unlink()
    (foreign / "metadata.yaml").write_text("")
    demo._prepare_output(tmp_path, "demo_recording")
    assert not foreign.exists()


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--recording", "/no/such/bag"], 2, "vispeak-demo: error: recording not found: /no/such/bag"),
        (["--checkpoint", "/no/such/model"], 1, "vispeak-demo: error:"),
        (["--alignment", "eager"], 2, "vispeak-demo: error: argument --alignment"),
    ],
)
def test_bad_arguments_exit_non_zero_with_a_one_line_error(tmp_path, args, code, message):
    result = subprocess.run(
        [sys.executable, "-m", "vispeak_ros.tools.demo", "--output-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
    )
    assert result.returncode == code
    assert result.stderr.strip().splitlines()[-1].startswith(message)
