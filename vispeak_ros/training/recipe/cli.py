"""`vispeak-train --stage N --config training/stageN.yaml [--data FILE] [--output DIR] [--resume]`: one stage of
the full recipe (N = 0 for the connector-alignment pass), plain or under `accelerate launch`."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from vispeak_ros.training.cli import positive_int


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vispeak-train",
        description="Train one stage of the ViSpeak recipe (0 alignment, 1 offline, 2 streaming, 3 ViSpeak-Instruct).",
    )
    p.add_argument("--stage", required=True, type=int, choices=(0, 1, 2, 3), help="recipe stage")
    p.add_argument("--config", required=True, type=Path, help="stage YAML (training/stageN.yaml)")
    p.add_argument("--data", type=Path, help="YAML/JSON list of dataset entries replacing the config's data")
    p.add_argument("--output", type=Path, help="run folder (default: runs/stageN)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint-STEP in --output")
    p.add_argument("--init-from", help="checkpoint folder to start from (overrides model.init_from)")
    p.add_argument("--max-steps", type=positive_int, help="optimizer steps (overrides the epochs)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads per process")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from vispeak_ros.model.errors import CheckpointError
    from vispeak_ros.training.recipe.dataset import DataError, read_entries
    from vispeak_ros.training.recipe.stages import ConfigError, load_config

    try:
        config = load_config(args.config, args.stage)
        entries = read_entries(args.data) if args.data else None
    except (ConfigError, DataError) as error:
        print(f"vispeak-train: error: {error}", file=sys.stderr)
        return 2
    if args.init_from:
        config.model = replace(config.model, init_from=args.init_from)
    if args.max_steps or args.threads:
        updates = {k: v for k, v in (("max_steps", args.max_steps), ("threads", args.threads)) if v}
        config.train = replace(config.train, **updates)
    if entries is None:
        from vispeak_ros.training.recipe.dataset import resolve_entry

        entries = [resolve_entry(e, args.config.parent, f"{args.config}: data[{i}]") for i, e in enumerate(config.data)]
    output = args.output or Path("runs") / f"stage{args.stage}"
    if output.exists() and not output.is_dir():
        print(f"vispeak-train: error: --output {output} is a file, not a folder", file=sys.stderr)
        return 2
    try:
        import accelerate  # noqa: F401
        import peft  # noqa: F401
    except ImportError as error:
        print(f"vispeak-train: error: the recipe needs accelerate and peft ({error}): pip install '.[train]'",
              file=sys.stderr)  # fmt: skip
        return 2
    from vispeak_ros.training.recipe.run import run_stage

    try:
        run_stage(config, output, entries=entries, resume=args.resume, log=lambda line: print(line, flush=True))
    except (CheckpointError, DataError, ConfigError, ValueError) as error:
        print(f"vispeak-train: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vispeak-train: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
