"""ViSpeak-Bench evaluation (`vispeak-eval`): run the model as the official harness does, judge, score.

- `tasks`: the seven subtasks and how each is driven and judged;
- `annotations`: the benchmark's annotation files, validated;
- `predictions`: the official predictions format (and the resumable per-process records behind it);
- `frames`: 1 fps frames from a video file or a rosbag2 recording, sampled as the official harness samples;
- `harness`: drives one item through the model (frames and text only), shards and parallel workers;
- `judge`: the LLM judge (OpenAI-compatible HTTP endpoint, disk cache);
- `scoring`: time accuracy, text score, Visual Reference accuracy, overall; `--official-quirks` parity;
- `cli`: `vispeak-eval run | judge | score`.

Importing this package imports neither torch nor a video library; the harness loads them when it runs.
"""
