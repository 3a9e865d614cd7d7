"""`make al-curves`: learning curves of margin sampling against random sampling on the labelled data.

    python -m train.cli.al_curves [--seeds 10] [--budgets 25 50 100 200] [--out reports/al-curves.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from train.annotation.simulate import METRICS, SimulationSettings, format_curves, learning_curves
from train.atomic import write_file_atomically
from train.config import DEFAULT_CONFIG, load_config
from train.data.build import labelled_examples
from train.data.scheme import load_scheme
from train.errors import UserError, exit_with
from train.logs import setup_command_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.cli.al_curves", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="repetitions with different splits and seed sets")
    parser.add_argument("--budgets", type=int, nargs="+", default=[25, 50, 100, 200], help="label counts to score")
    parser.add_argument("--seed-size", type=int, default=10, help="random labels the loop starts from")
    parser.add_argument("--batch-size", type=int, default=5, help="labels added per round")
    parser.add_argument("--out", type=Path, default=Path("reports/al-curves.json"), help="every run's scores")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config whose data section locates the labels")
    args = parser.parse_args(argv)
    setup_command_logging()
    settings = SimulationSettings(budgets=tuple(args.budgets), seed_size=args.seed_size, batch_size=args.batch_size,
                                  seeds=tuple(range(args.seeds)))
    try:
        data = load_config(args.config).data
        result = learning_curves(labelled_examples(data), load_scheme(data.labels), settings)
    except UserError as e:
        return exit_with(e)
    write_file_atomically(args.out, lambda path: path.write_text(json.dumps(result, indent=1), encoding="utf-8"))
    for metric in METRICS:
        print(format_curves(result, metric) + "\n")
    print(f"every run's scores -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
