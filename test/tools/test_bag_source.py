"""Recordings are cut into segments as the node would cut the live stream, in every storage and audio flavour."""

import pytest

from vispeak_ros.tools.bag_source import RecordingError, SourceStats, read_segments
from vispeak_ros.training import recordings, world


@pytest.fixture(scope="module")
def session_stream():
    return world.generate_session(seed=1, size=(160, 120), fps=10)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("flavour", ["mgonzs13", "ros_drivers"])
def test_a_recording_gives_one_complete_segment_per_second_with_its_questions(
    session_stream, tmp_path, storage, flavour
):
    bag = recordings.write_bag(session_stream, tmp_path / "bag", storage=storage, audio_flavour=flavour)
    stats = SourceStats()
    segments = list(read_segments(bag, stats=stats))
    assert len(segments) == round(session_stream.duration_s)
    assert [s.index for s in segments] == list(range(len(segments)))
    assert all(not s.partial and s.audio_coverage == 1.0 and not s.missing_video for s in segments[:-1])
    asked = [t.text for s in segments for t in s.texts]
    assert asked == [text for _, text in session_stream.user_texts]
    assert stats.conversion_errors == 0 and stats.messages > 0


def test_a_missing_recording_or_camera_is_one_clear_error(session_stream, tmp_path):
    with pytest.raises(RecordingError, match="recording not found"):
        list(read_segments(tmp_path / "nothing"))
    bag = recordings.write_bag(session_stream, tmp_path / "bag", storage="mcap")
    with pytest.raises(RecordingError, match="no topic /front_camera"):
        list(read_segments(bag, camera_topic="/front_camera"))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "metadata.yaml").write_text("not: a bag\n")
    with pytest.raises(RecordingError, match="cannot open as a rosbag2 recording"):
        list(read_segments(tmp_path / "junk"))
