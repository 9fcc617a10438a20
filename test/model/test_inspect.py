"""vispeak-inspect: a summary for a good checkpoint, one line on stderr and a non-zero status for a bad one."""

from __future__ import annotations

import pytest

from vispeak_ros.tools.inspect import main


def test_summary_of_a_checkpoint(tiny_checkpoint, capsys):
    assert main([str(tiny_checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "kind: ViSpeak" in out and "tokenizer: none" in out
    for part in ("llm", "vision_tower", "mm_projector", "audio_encoder", "fusion", "informative_head", "total"):
        assert f"  {part}" in out
    assert "dtype float32" in out and "fusion: adaptive_combine" in out


def test_dtype_option(tiny_checkpoint, capsys):
    assert main([str(tiny_checkpoint), "--dtype", "bfloat16"]) == 0
    assert "dtype bfloat16" in capsys.readouterr().out


def test_a_bad_checkpoint_gives_one_line_and_status_1(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "checkpoint directory not found" in captured.err


def test_bad_arguments_exit_2():
    with pytest.raises(SystemExit) as info:
        main(["--dtype", "int8", "somewhere"])
    assert info.value.code == 2
