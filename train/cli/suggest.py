"""`make suggest`: pick the sentences of unlabelled articles to label next, pre-annotated by a checkpoint.

    python -m train.cli.suggest [--model models/<run>] INPUT... --n 50 --out suggestions/

Writes OUT/tasks.json (Label Studio tasks with predictions), OUT/labeling_config.xml
and OUT/suggestions.jsonl (the same sentences, pre-filled, in the annotation format).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from transformers.utils import logging as transformers_logging

from train.annotation.suggest import STRATEGIES, suggest
from train.config import DEFAULT_CONFIG, load_config
from train.errors import UserError, exit_with
from train.logs import setup_command_logging
from train.modeling.checkpoint import resolve_model_path
from train.modeling.tagger import Tagger
from train.prediction.readers import check_inputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.cli.suggest", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="articles in any format `predict` reads")
    parser.add_argument("--n", type=int, default=50, help="how many sentences to suggest")
    parser.add_argument("--out", type=Path, default=Path("suggestions"), help="output directory")
    parser.add_argument("--model", help="checkpoint directory (default: models/latest)")
    parser.add_argument("--per-article", type=int, default=3, help="at most this many sentences of one article")
    parser.add_argument("--strategy", choices=STRATEGIES, default="uncertainty",
                        help="uncertainty: the sentences the model is least sure of, for training; random: a uniform "
                             "sample of the sentences, to label as `make coverage LABELLED=`")
    parser.add_argument("--seed", type=int, default=0, help="the random strategy's seed")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config whose data section locates the labels")
    parser.add_argument("--force", action="store_true", help="replace the files of an earlier suggestion in --out")
    args = parser.parse_args(argv)
    setup_command_logging()
    transformers_logging.set_verbosity_error()
    try:
        check_inputs(args.inputs)
        data = load_config(args.config).data
        model_path = resolve_model_path(args.model)
        tagger = Tagger.from_pretrained(model_path)
        result = suggest(tagger, args.inputs, args.n, args.out, Path(data.labels), Path(data.annotations_dir),
                         model_version=model_path.name, per_article=args.per_article, overwrite=args.force,
                         report=lambda line: print(line, file=sys.stderr), strategy=args.strategy, seed=args.seed)
    except UserError as e:
        return exit_with(e)
    print(f"{len(result.chosen)} of {result.sentences} sentences from {result.articles} articles suggested "
          f"-> {', '.join(str(f) for f in result.files)}")
    if result.problems.counts:
        print(f"{sum(result.problems.counts.values())} inputs skipped (reported above)", file=sys.stderr)
    return 1 if result.problems.counts else 0


if __name__ == "__main__":
    sys.exit(main())
