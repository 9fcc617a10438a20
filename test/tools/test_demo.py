"""vispeak-demo runs the bundled demo model on the bundled recording through the real vispeak node (its own process,
Cyclone DDS on loopback, a random free domain), from any directory; `--in-process` gives the same answers."""

import io
import itertools
import subprocess
import sys

import pytest

pytest.importorskip("cyclonedds")

from vispeak_ros import data
from vispeak_ros.tools import demo


@pytest.fixture(scope="module")
def node_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("demo")
    out = io.StringIO()
    result = demo.run(data.demo_recording(), "", out_dir, data.demo_annotations(), out=out)
    return out_dir, out.getvalue().splitlines(), result


def test_the_node_greets_the_wave_in_time_and_says_what_it_saw(node_run):
    _, lines, result = node_run
    assert lines[0].startswith("vispeak-demo: starting vispeak-node (Cyclone DDS, loopback, domain ")
    assert result.collector.answers and any(line.strip().startswith("event WAKE_UP") for line in lines)
    wake = next(line for line in lines if line.startswith("ground truth") and "WAKE_UP" in line)
    assert "answered at" in wake
    assert any(line.startswith(f"done: {len(result.collector.answers)} answers") for line in lines)


def test_the_demo_writes_a_recording_and_timeline_pictures_into_the_output_directory(node_run):
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    out_dir, _, result = node_run
    assert (out_dir / "demo_recording.timeline.png").stat().st_size > 10_000
    assert "<svg" in (out_dir / "demo_recording.timeline.html").read_text(encoding="utf-8")
    store = get_typestore(Stores.ROS2_HUMBLE)
    with AnyReader([out_dir / "demo_recording.vispeak.mcap"], default_typestore=store) as bag:
        counts = {c.topic: c.msgcount for c in bag.connections}
    assert counts["/vispeak/informative"] >= 59  # the node scored every second of the one-minute recording
    assert counts["/camera/image_raw/compressed"] == 600 and counts["/audio"] == 937  # what was played to it
    assert counts["/vispeak/events"] >= 1 and counts["/vispeak/feedback"] >= 2 * len(result.collector.answers) - 1


def test_in_process_gives_the_answers_the_node_gave(node_run, tmp_path):
    _, _, through_node = node_run
    in_process = demo.run(data.demo_recording(), "", tmp_path, data.demo_annotations(), in_process=True,
                          out=io.StringIO())  # fmt: skip

    def answers(result):
        return [(a.answer_id, a.text, a.trigger, round(a.t, 1)) for a in result.collector.answers]

    assert answers(in_process) == answers(through_node)
    assert [(e.behaviour, e.answer_id) for e in in_process.collector.events] == [
        (e.behaviour, e.answer_id) for e in through_node.collector.events
    ]


def test_the_node_is_started_on_sim_time_with_its_inputs_remapped_to_the_recording(tmp_path):
    from vispeak_ros.training import recordings, world

    bag = tmp_path / "robot"
    stream = world.generate("thumbs_up", seed=3)
    recordings.write_bag(stream, bag, storage="sqlite3", audio_flavour="ros_drivers", camera_topic="/robot/cam")
    command = demo.node_command(bag, "", "trained")
    assert command[1:6] == ["-m", "vispeak_ros.ros.node_main", "--transport", "dds", "--ros-args"]
    pairs = [f"{flag} {value}" for flag, value in itertools.pairwise(command) if flag in ("-p", "-r")]
    assert "-p use_sim_time:=true" in pairs and "-p audio_flavour:=ros_drivers" in pairs
    assert "-p audio_stamped:=true" in pairs and "-r audio_info:=/audio_info" in pairs
    assert any(p.startswith("-r camera/image_raw") and p.endswith(":=/robot/cam") for p in pairs)


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
        timeout=300,
    )
    assert result.returncode == code
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(message) and len([line for line in lines if "Traceback" in line]) == 0
