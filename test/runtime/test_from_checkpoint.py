"""`Assistant(config)` loads the configured checkpoint folder (published layout + tokenizer) with the torch backend."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from runtimekit import segments

from vispeak_ros.model.tiny import tiny_model
from vispeak_ros.runtime import Assistant, InformativeRecord, RuntimeConfig
from vispeak_ros.runtime.tiny import tiny_tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))
from modelkit import write_checkpoint


def test_assistant_loads_the_configured_checkpoint(tmp_path):
    root = write_checkpoint(tiny_model(seed=3), tmp_path / "ckpt")
    tiny_tokenizer().tokenizer.save(str(root / "tokenizer.json"))
    (root / "tokenizer_config.json").write_text(json.dumps({"pad_token": "<|endoftext|>"}))
    assistant = Assistant(RuntimeConfig(checkpoint=str(root), trigger_threshold=3.0))
    outputs = [o for seg in segments(2, seed=3) for o in assistant.process(seg)]
    assert [o.segment_index for o in outputs if isinstance(o, InformativeRecord)] == [0, 1]
    assert assistant.backend.cache_length() > 0
