"""One typed config, loaded from YAML (plain or ROS params format); bad values are refused with the key named."""

import pytest

from vispeak_ros.core.events import Behaviour
from vispeak_ros.runtime.config import ConfigError, RuntimeConfig, from_mapping, load_config


def test_defaults_follow_the_official_inference():
    config = RuntimeConfig()
    assert config.trigger_threshold == 0.35
    assert config.system_prompt == "vispeak" and config.alignment == "trained"
    assert config.enabled_behaviours == frozenset(Behaviour) - {Behaviour.NONE}


def test_ros_params_format_and_plain_yaml_load_the_same(tmp_path):
    ros = tmp_path / "assistant.yaml"
    ros.write_text(
        "vispeak:\n  ros__parameters:\n    trigger_threshold: 0.5\n    behaviours: [anomaly, interruption]\n"
    )
    plain = tmp_path / "plain.yaml"
    plain.write_text("trigger_threshold: 0.5\nbehaviours: anomaly, interruption\n")
    assert load_config(ros) == load_config(plain)
    assert load_config(ros).enabled_behaviours == {Behaviour.ANOMALY, Behaviour.INTERRUPTION}


@pytest.mark.parametrize(
    "values, message",
    [
        ({"trigger_threshold": 5.0}, "trigger_threshold must be in [0.0, 3.0], got 5.0"),
        ({"window_segments": 0}, "window_segments must be in [1, 3600], got 0"),
        ({"trigger_release": 1.5}, "trigger_release must be in [0.0, 1.0], got 1.5"),
        ({"audio_questions": "yes"}, "audio_questions must be true or false, got 'yes'"),
        ({"max_answer_tokens": "many"}, "max_answer_tokens must be in [1, 2048], got 'many'"),
        ({"alignment": "eager"}, "alignment must be one of trained, pad, got 'eager'"),
        ({"device": "tpu"}, "device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
        ({"behaviours": ["dancing"]}, "behaviours: unknown ['dancing']"),
        ({"trigger_treshold": 0.3}, "unknown key(s) trigger_treshold"),
    ],
)
def test_bad_values_name_the_key_and_the_allowed_range(values, message):
    with pytest.raises(ConfigError) as error:
        from_mapping(values, source="assistant.yaml")
    assert str(error.value).startswith("assistant.yaml: ")
    assert message in str(error.value)


def test_file_errors_say_which_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("other_node:\n  ros__parameters: {}\n")
    with pytest.raises(ConfigError, match="no 'vispeak: ros__parameters:' section"):
        load_config(bad)


def test_overrides_are_validated_like_a_file():
    assert RuntimeConfig().with_overrides(trigger_threshold=0.2).trigger_threshold == 0.2
    with pytest.raises(ConfigError, match="trigger_threshold"):
        RuntimeConfig().with_overrides(trigger_threshold=-1)
