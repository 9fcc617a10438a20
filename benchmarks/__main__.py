"""Run a benchmark: `python -m benchmarks` lists them, `python -m benchmarks NAME [--quick]` runs one.

Each benchmark is a module `benchmarks/<name>.py` with a one-line `DESCRIPTION` and
`run(quick: bool) -> dict`; the runner prints the figures as `key=value` pairs on the last line.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> dict[str, str]:
    """Benchmark name -> description, for every module in this folder."""
    found = {}
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        found[info.name] = getattr(module, "DESCRIPTION", "")
    return found


def format_figures(figures: dict) -> str:
    def fmt(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    return " ".join(f"{key}={fmt(value)}" for key, value in figures.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help="benchmark to run; omit to list them")
    parser.add_argument("--quick", action="store_true", help="a shorter run, for a smoke check")
    args = parser.parse_args(argv)
    benchmarks = available()
    if args.name is None:
        for name, description in sorted(benchmarks.items()):
            print(f"{name:16s} {description}")
        return 0
    if args.name not in benchmarks:
        parser.error(f"unknown benchmark {args.name!r}; available: {', '.join(sorted(benchmarks))}")
    module = importlib.import_module(f"benchmarks.{args.name}")
    figures = module.run(quick=args.quick)
    print(format_figures(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
