"""`make import-labels`: turn a Label Studio JSON export into data/annotations/<name>.jsonl.

    python -m train.cli.import_labels EXPORT.json [--name STEM] [--dir DIR] [--force]

Exit status: 0 every labelled task imported, 1 some tasks left out (each reported
with its task id on stderr), 2 the export could not be read or the file exists.
"""

from __future__ import annotations

import argparse
import sys

from train.annotation.importer import import_export
from train.config import DEFAULT_CONFIG, load_config
from train.data.scheme import load_scheme
from train.errors import UserError, exit_with
from train.logs import setup_command_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.cli.import_labels", description=__doc__.split("\n\n")[0])
    parser.add_argument("export", help="a Label Studio export in JSON format")
    parser.add_argument("--name", help="file stem under data/annotations/ (default: the export's stem)")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config whose data section locates the labels")
    parser.add_argument("--dir", help="write <name>.jsonl here instead (a coverage sample for `make coverage "
                                      "LABELLED=` belongs outside data/annotations/, or the next run trains on it)")
    parser.add_argument("--force", action="store_true", help="replace data/annotations/<name>.jsonl")
    args = parser.parse_args(argv)
    setup_command_logging()
    try:
        data = load_config(args.config).data
        result = import_export(args.export, args.dir or data.annotations_dir, args.name, load_scheme(data.labels),
                               overwrite=args.force)
    except UserError as e:
        return exit_with(e)
    for problem in result.problems:
        print(problem, file=sys.stderr)
    written = f"-> {result.out}" if result.records else "(nothing written)"
    print(f"{len(result.records)} sentences imported {written}; {result.skipped} skipped or cancelled, "
          f"{result.unlabelled} not labelled yet, {len(result.problems)} left out with a problem")
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
