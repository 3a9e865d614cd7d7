"""`make recipes`: fine-tuning recipes compared by leave-event-out cross-validation (see train/bench/recipes.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from train.bench.recipes import RECIPES, as_json, format_recipes, run_recipes
from train.errors import UserError, exit_with
from train.logs import setup_command_logging
from train.modeling.checkpoint import write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare fine-tuning recipes by leave-event-out cross-validation.")
    parser.add_argument("--recipe", action="append", choices=list(RECIPES), help="only these (default: all)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="bench/recipes.json")
    args = parser.parse_args(argv)
    setup_command_logging()
    try:
        results = run_recipes(args.recipe, args.seed)
    except UserError as e:
        return exit_with(e)
    print(format_recipes(results))
    write_json(Path(args.out), {"seed": args.seed, "recipes": as_json(results)})
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
