"""`make coverage`: the coverage page over a predictions file, shares corrected for the tagger's errors.

    python -m train.cli.coverage predictions.jsonl [--out reports/coverage-predictions] [--model models/<run>]
        [--labelled sample.jsonl]
    python -m train.cli.coverage DIR --engine ray   (a part-file folder; the per-article reduction on Ray)
"""

from __future__ import annotations

import argparse
import sys

from train.coverage.labelled import checkpoint_corrections, labelled_articles, labelled_source_check
from train.coverage.page import build_coverage
from train.coverage.tables import N_RESAMPLES, SAMPLE_SIZE
from train.errors import UsageError, UserError, exit_with
from train.logs import setup_command_logging
from train.modeling.checkpoint import open_checkpoint
from train.prediction.ray_engine import RayOptions, start_ray


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Coverage page over a predictions file (`make predict` output).")
    parser.add_argument("predictions", help="JSONL, CSV or Parquet written by `make predict`, or the folder of "
                                            "part files `make predict ENGINE=ray` writes")
    parser.add_argument("--out", help="output directory (default: reports/coverage-<predictions name>)")
    parser.add_argument("--model", help="the checkpoint that wrote the predictions (default: models/latest)")
    parser.add_argument("--labelled", help="sentences of this coverage labelled in the annotation format (article, "
                                           "index, text, topics, speaker; sources and quote optional): the error rates are measured on "
                                           "them, and the source extractor on those with source labels")
    parser.add_argument("--resamples", type=int, default=N_RESAMPLES, help="bootstrap resamples of the articles")
    parser.add_argument("--sample", type=int, default=SAMPLE_SIZE, help="sentences kept for the sentence browser")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="ray: reduce each part file to per-article sums on Ray (same report)")
    parser.add_argument("--ray-address", help="auto or ray://host:port: an existing cluster (default: a local one)")
    args = parser.parse_args(argv)
    setup_command_logging()
    try:
        if args.engine == "ray":
            start_ray(RayOptions(address=args.ray_address))
        elif args.ray_address:
            raise UsageError("--ray-address needs --engine ray")
        checkpoint = open_checkpoint(args.model)
        out = build_coverage(
            args.predictions, checkpoint.scheme,
            lambda corpus: checkpoint_corrections(checkpoint, args.labelled, corpus, args.resamples),
            str(checkpoint.path), args.out, args.resamples, args.sample, args.engine,
            keep_texts_of=labelled_articles(args.labelled),
            check_sources=args.labelled and (lambda corpus: labelled_source_check(
                args.labelled, corpus, checkpoint.scheme, args.resamples)))
    except UserError as e:
        return exit_with(e)
    print(out / "index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
