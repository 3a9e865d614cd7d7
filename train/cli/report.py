"""`make report`: compare checkpoints and the TF-IDF baseline on the same data.

    python -m train.cli.report [models/a models/b ...] [--data file.jsonl] [--name NAME]
"""

from __future__ import annotations

import argparse
import sys

from train.errors import UserError, exit_with
from train.evaluation.report import build_report
from train.evaluation.stats import N_RESAMPLES
from train.logs import setup_command_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare checkpoints and the TF-IDF baseline on the same data.")
    parser.add_argument("models", nargs="*", help="checkpoint directories (default: every run in models/)")
    parser.add_argument("--data", help="labelled JSONL in the annotation format (default: the test split)")
    parser.add_argument("--name", help="report name: reports/<name>/ (default: a timestamp)")
    parser.add_argument("--out-dir", default="reports")
    parser.add_argument("--resamples", type=int, default=N_RESAMPLES, help="bootstrap resamples")
    args = parser.parse_args(argv)
    setup_command_logging()
    try:
        report = build_report(args.models, args.name, args.out_dir, args.data,
                              args.resamples)
    except UserError as e:
        return exit_with(e)
    print(f"{report / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
