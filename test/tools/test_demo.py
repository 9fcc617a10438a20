"""vispeak-demo runs the real input pipeline on a generated recording and shows every segment it cuts."""

import io
import subprocess
import sys

from vispeak_ros.tools import demo


def test_demo_cuts_one_complete_segment_per_second_with_audio_300ms_behind_video():
    out = io.StringIO()
    assert demo.run(seconds=5, fps=15, frame_policy="latest", audio_delay_ms=300, seed=0, out=out) == 0
    lines = out.getvalue().splitlines()
    assert "no model yet" in lines[0]
    segments = [line for line in lines if line.startswith("segment")]
    assert len(segments) == 5
    assert all("audio 100%" in line and "complete" in line for line in segments[:-1])
    assert "frame @ 0.933 s (320x240)" in segments[0]  # the newest of the 15 frames in [0, 1) s
    assert lines[-1].startswith("done: 5 segments") and "skipped undecoded 70" in lines[-1]


def test_official_policy_takes_the_first_frame_of_each_second():
    out = io.StringIO()
    demo.run(seconds=3, fps=15, frame_policy="official", audio_delay_ms=0, seed=0, out=out)
    assert "frame @ 1.000 s" in out.getvalue().splitlines()[3]


def test_bad_arguments_exit_non_zero_with_a_one_line_error():
    result = subprocess.run(
        [sys.executable, "-m", "vispeak_ros.tools.demo", "--seconds", "-1"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "vispeak-demo: error: argument --seconds: must be > 0, got -1"
