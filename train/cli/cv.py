"""`make cv`: k folds x seeds for a run's configuration; the results are added to the run."""

from __future__ import annotations

import argparse
import sys

from train.config import load_config
from train.data.scheme import load_scheme
from train.errors import UserError, exit_with
from train.logs import setup_command_logging
from train.modeling.checkpoint import resolve_model_path
from train.training.cv import attach_to_run, cross_validate, format_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cross-validate a run's configuration and add the results to it.")
    parser.add_argument("--model", help="run directory (default: models/latest)")
    parser.add_argument("overrides", nargs="*", help="key=value on top of the run's config, e.g. cv.seeds=[1,2]")
    args = parser.parse_args(argv)
    setup_command_logging()
    try:
        run_dir = resolve_model_path(args.model)
        config = load_config(run_dir / "train_config.yaml", args.overrides)
        scheme = load_scheme(config.data.labels)
        cv = cross_validate(config, scheme)
        attach_to_run(run_dir, cv, config, scheme)
    except UserError as e:
        return exit_with(e)
    print(format_summary(cv))
    print(f"written to {run_dir}/cv.json, metrics.json and README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
