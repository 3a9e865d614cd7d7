"""`make data`: validate the gold annotations and build data/build/ (or print a labelling template)."""

from __future__ import annotations

import argparse
import sys

from train.config import DEFAULT_CONFIG, load_config
from train.data.annotations import annotation_template, load_articles
from train.data.build import build_dataset, floor_shortfalls
from train.data.scheme import load_scheme
from train.errors import UserError, exit_with
from train.logs import setup_command_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate annotations and build data/build/.")
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--force", action="store_true", help="rebuild even if the inputs are unchanged")
    parser.add_argument("--template", metavar="ARTICLE_ID",
                        help="print unlabelled JSONL lines for a seed article and exit")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. data.seed=7")
    args = parser.parse_args(argv)
    setup_command_logging()
    try:
        config = load_config(args.config, args.overrides).data
        if args.template:
            articles = load_articles(config.seeds)
            if args.template not in articles:
                print(f"{config.seeds}: no article {args.template!r}; known: {', '.join(articles)}", file=sys.stderr)
                return 2
            sys.stdout.write(annotation_template(articles[args.template]))
            return 0
        result = build_dataset(config, force=args.force)
    except UserError as e:
        return exit_with(e)
    state = "unchanged, build skipped" if result.skipped else "built"
    print(f"{result.path}: {state} (fingerprint {result.fingerprint})")
    print(result.table)
    shortfalls = floor_shortfalls(result.dataset, load_scheme(config.labels))
    print("class floors (every speaker 40, every topic 30): " + ("met" if not shortfalls else
                                                                  "NOT met: " + ", ".join(shortfalls)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
