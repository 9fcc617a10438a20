"""`vispeak-train`: retrain the tiny demo checkpoint on the synthetic world (CPU, minutes), with progress display.

Writes a checkpoint folder `load_checkpoint` reads strictly (config.json, model.safetensors, InternViT-tiny/,
audio-encoder-tiny/, tokenizer files, training.json with the recipe, timings and held-out figures).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from vispeak_ros.training.trainer import Recipe


def positive_int(text: str) -> int:
    """argparse type: an integer above zero."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vispeak-train",
        description="Train the tiny ViSpeak demo model on the synthetic gesture world (CPU). "
        "With --stage N --config FILE: one stage of the full recipe (see vispeak-train --stage 0 --help).",
    )
    p.add_argument("--output", required=True, type=Path, help="checkpoint folder to write")
    p.add_argument("--steps", type=positive_int, help="training steps (default: the recipe's)")
    p.add_argument("--seed", type=int, help="seed of the model init, the training streams and their order")
    p.add_argument("--config", type=Path, help="YAML file of recipe keys overriding the demo recipe")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (default 1)")
    p.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation after training")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a == "--stage" or a.startswith("--stage=") for a in argv):  # the full recipe: vispeak-train --stage N
        from vispeak_ros.training.recipe.cli import main as stage_main

        return stage_main(argv)
    args = parser().parse_args(argv)
    try:
        recipe = Recipe.from_yaml(args.config) if args.config else Recipe()
    except (OSError, ValueError, TypeError) as exc:
        print(f"vispeak-train: error: bad --config: {exc}", file=sys.stderr)
        return 2
    overrides = {k: v for k, v in (("steps", args.steps), ("seed", args.seed), ("threads", args.threads)) if v}
    if args.seed is not None:
        overrides["seed"] = args.seed
    recipe = replace(recipe, **overrides)
    if args.output.exists() and not args.output.is_dir():
        print(f"vispeak-train: error: --output {args.output} is a file, not a folder", file=sys.stderr)
        return 2
    from vispeak_ros.training.trainer import run_recipe  # torch import only after the arguments are fine

    try:
        run_recipe(recipe, args.output, log=lambda line: print(line, flush=True), evaluate_after=not args.no_eval)
    except KeyboardInterrupt:
        print("vispeak-train: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
