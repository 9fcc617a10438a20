"""vispeak-eval: ViSpeak-Bench with vispeak_ros. `run` (clips -> predictions), `judge` (-> verdicts), `score`.

    vispeak-eval run   --annotations ANN --videos DIR [--checkpoint CKPT --device cuda --dtype float16] [--workers N]
    vispeak-eval judge --annotations ANN --base-url URL [--model M] [--api-key-env NAME]
    vispeak-eval score --annotations ANN [--json scores.json]

Every subcommand reads and writes `--output` (default ./vispeak_eval): `<Task>_output.json` (official format),
`<Task>_verdicts.json`, the per-process logs that make `run` resumable, and the judge's cache. Exit status: 0 done,
1 with one line on stderr when something is wrong, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from vispeak_ros.evaluation import tasks as task_table

DEFAULT_OUTPUT = "vispeak_eval"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--annotations",
        required=True,
        type=Path,
        help="folder with the ViSpeak-Bench annotation files (<Subtask>.json)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(DEFAULT_OUTPUT),
        help=f"folder for predictions, verdicts and logs (default ./{DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--tasks", default="all", help="subtasks by name or code, comma-separated (aw,gu,hr,vi,vr,vt,vw)"
    )
    parser.add_argument(
        "--official-quirks",
        action="store_true",
        help="reproduce the released harness and scorer instead of the fixed rules",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vispeak-eval", description="ViSpeak-Bench: run, judge, score.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="drive the clips through the model -> <Task>_output.json (resumable)")
    _common(run)
    run.add_argument(
        "--videos",
        required=True,
        type=Path,
        help="folder the annotations' video paths are relative to (videos, or rosbag2 recordings of the "
        "same names without the suffix)",
    )
    run.add_argument("--checkpoint", default="", help="ViSpeak checkpoint folder (default: the bundled demo model)")
    run.add_argument("--vision-tower", default="", help="InternViT-300M-448px folder (see vispeak-inspect)")
    run.add_argument("--audio-encoder", default="", help="VITA-1.5 audio-encoder folder (train.yaml, global_cmvn)")
    run.add_argument("--device", default="cpu", help="cpu, cuda (cuda:<LOCAL_RANK> under a launcher) or cuda:N")
    run.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    run.add_argument("--workers", type=int, default=1, help="processes on this host (each loads the model)")
    run.add_argument(
        "--threshold",
        type=float,
        default=0.35,
        help="speak when the last 3 informative probabilities sum above this (official 0.35)",
    )
    run.add_argument("--limit", type=int, default=None, help="only the first N clips of each subtask")

    judge = sub.add_parser("judge", help="LLM-judge the in-time answers -> <Task>_verdicts.json")
    _common(judge)
    judge.add_argument(
        "--base-url",
        default=os.environ.get("VISPEAK_JUDGE_BASE_URL", ""),
        help="OpenAI-compatible API base, e.g. https://api.openai.com/v1 (default: $VISPEAK_JUDGE_BASE_URL)",
    )
    judge.add_argument(
        "--model",
        default=os.environ.get("VISPEAK_JUDGE_MODEL", ""),
        help="judge model (default: $VISPEAK_JUDGE_MODEL, else the paper's gpt-4o-2024-05-13)",
    )
    judge.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="NAME of the environment variable with the API key (default OPENAI_API_KEY)",
    )
    judge.add_argument("--cache", type=Path, default=None, help="verdict cache folder (default <output>/judge_cache)")
    judge.add_argument("--max-attempts", type=int, default=5, help="attempts per answer (retries with backoff)")
    judge.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (default 4)")
    judge.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")

    score = sub.add_parser("score", help="per-subtask table (text) and JSON from predictions [+ verdicts]")
    _common(score)
    score.add_argument("--json", type=Path, default=None, help="also write the table as JSON here")
    return parser


def _items(args) -> dict:
    from vispeak_ros.evaluation.annotations import load_all

    chosen = task_table.select(args.tasks)
    return load_all(args.annotations, chosen)


def cmd_run(args) -> int:
    from vispeak_ros.evaluation import harness

    if args.workers < 1:
        raise ValueError("--workers must be >= 1")
    if not args.videos.is_dir():
        raise ValueError(f"videos folder not found: {args.videos}")
    items = _items(args)
    spec = harness.RunSpec(
        annotations=str(args.annotations),
        media=str(args.videos),
        output=str(args.output),
        tasks=tuple(items),
        checkpoint=args.checkpoint,
        vision_tower=args.vision_tower,
        audio_encoder=args.audio_encoder,
        device=args.device,
        dtype=args.dtype,
        limit=args.limit,
        threshold=args.threshold,
        official_quirks=args.official_quirks,
    )
    ran, written = harness.run(spec, items, workers=args.workers)
    rank, world, _ = harness.distributed()
    print(
        f"vispeak-eval run: {ran} clips run by rank {rank}/{world}; "
        + (f"wrote {', '.join(str(p) for p in written)}" if written else "no subtask complete yet")
    )
    incomplete = [name for name in items if all(p.name != f"{name}_output.json" for p in written)]
    if incomplete:
        print(f"vispeak-eval run: waiting for other ranks on: {', '.join(incomplete)} (run again to merge)")
    return 0


def cmd_judge(args) -> int:
    from vispeak_ros.evaluation import judge as judging
    from vispeak_ros.evaluation.predictions import output_path, read_predictions

    if not args.base_url:
        print(
            "vispeak-eval judge: no judge endpoint configured (--base-url or VISPEAK_JUDGE_BASE_URL): no text "
            "scores can be computed; `vispeak-eval score` reports time accuracy and Visual Reference only.",
            file=sys.stderr,
        )
        return 2
    config = judging.JudgeConfig(
        base_url=args.base_url,
        model=args.model or judging.DEFAULT_MODEL,
        api_key_env=args.api_key_env,
        timeout_s=args.timeout,
        max_attempts=args.max_attempts,
    )
    if not os.environ.get(args.api_key_env):
        print(f"vispeak-eval judge: ${args.api_key_env} is not set: requests go without a key", file=sys.stderr)
    judge = judging.Judge(config, args.cache or args.output / "judge_cache")
    for name, items in _items(args).items():
        if not items[0].task.timed:
            continue
        path = output_path(args.output, name)
        if not path.is_file():
            print(f"{name}: no predictions file ({path}); skipped")
            continue
        verdicts, failed = judging.judge_task(
            items,
            read_predictions(path),
            judge,
            args.official_quirks,
            progress=lambda line: print(line, file=sys.stderr),
            concurrency=args.concurrency,
        )
        target = judging.verdicts_path(args.output, name)
        kept = {v: d for v, d in judging.load_verdicts(target).items() if d.get("model") == config.model}
        out = judging.save_verdicts(target, {**kept, **verdicts}, config.model)  # earlier verdicts of this judge stay
        print(
            f"{name}: {len(verdicts)} verdicts"
            + (f", {failed} without a usable verdict" if failed else "")
            + f" -> {out}"
        )
    print(f"vispeak-eval judge: {judge.client.requests} requests, {judge.cached} verdicts from the cache")
    return 0


def cmd_score(args) -> int:
    from vispeak_ros.evaluation import scoring
    from vispeak_ros.evaluation.judge import load_verdicts, verdicts_path
    from vispeak_ros.evaluation.predictions import PredictionError, output_path, read_predictions

    rows, other = [], []
    for name, items in _items(args).items():
        task = items[0].task
        path = output_path(args.output, name)
        if not path.is_file():
            row = scoring.TaskScore(name, task.code, len(items))
            row.notes.append(f"no predictions file {path}")
            rows.append(row)
            other.append(scoring.TaskScore(name, task.code, len(items)))
            continue
        entries = read_predictions(path)
        verdicts = load_verdicts(verdicts_path(args.output, name))
        rows.append(scoring.score_task(task, items, entries, verdicts, args.official_quirks))
        try:
            other.append(scoring.score_task(task, items, entries, verdicts, not args.official_quirks))
        except PredictionError:  # e.g. duplicates, which only the released rules accept
            other.append(scoring.TaskScore(name, task.code, len(items)))
    print(scoring.format_table(rows, args.official_quirks))
    print(scoring.format_other(other, args.official_quirks))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        data = scoring.as_json(rows, args.official_quirks, other)
        args.json.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command = {"run": cmd_run, "judge": cmd_judge, "score": cmd_score}[args.command]
    try:
        return command(args)
    except (ValueError, OSError, RuntimeError) as error:  # bad files, unreachable judge, failed workers: one line
        print(f"vispeak-eval {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
