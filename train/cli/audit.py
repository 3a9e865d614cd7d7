"""`make audit`: list the labels that are likely wrong, most likely first.

    python -m train.cli.audit [--out reports/audit]

Writes OUT/audit.md, OUT/audit.jsonl (each suspect with its path:line, its label
and the suggested one) and OUT/tasks.json to re-review them in Label Studio.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from train.annotation.audit import run_audit
from train.config import DEFAULT_CONFIG, load_config
from train.data.build import labelled_examples
from train.data.scheme import load_scheme
from train.errors import UserError, exit_with
from train.logs import setup_command_logging

SHOWN = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.cli.audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports/audit"), help="output directory")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config whose data section locates the labels")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. data.annotations_dir=other/")
    args = parser.parse_args(argv)
    setup_command_logging()
    try:
        data = load_config(args.config, args.overrides).data
        examples = labelled_examples(data)
        suspects = run_audit(examples, load_scheme(data.labels), args.out)
    except UserError as e:
        return exit_with(e)
    for s in suspects[:SHOWN]:
        label = ", ".join(s.label) or "(none)" if isinstance(s.label, list) else s.label
        suggested = ", ".join(s.suggested) or "(none)" if isinstance(s.suggested, list) else s.suggested
        print(f"{s.where}: {s.field} {label} -> {suggested}? ({s.quality:.3f}) {s.text[:70]}")
    more = f" ({len(suspects) - SHOWN} more)" if len(suspects) > SHOWN else ""
    print(f"{len(suspects)} suspect labels among {len(examples)} sentences{more} -> {args.out}/audit.md, "
          f"audit.jsonl, tasks.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
