"""Tag new articles: every sentence gets topics and the speaker whose position it reports.

    python -m train.cli.predict [--model models/<run>] INPUT... --out predictions.jsonl

Exit status: 0 all articles tagged, 1 some input skipped (each reported once on
stderr and counted at the end), 2 usage error (bad --model, missing input, an
existing --out without --overwrite or --resume, no article in the inputs, ...).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from transformers.utils import logging as transformers_logging

from train.errors import UserError, exit_with
from train.logs import setup_command_logging
from train.modeling.tagger import Tagger
from train.prediction.readers import check_inputs
from train.prediction.run import check_output, closing_summary, predict_files
from train.prediction.writers import FORMATS, output_format


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train.cli.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="a .txt/.html article, a .jsonl file (text, optional id/outlet/date/url), "
                             "a directory (recursive), or - for stdin (one article or JSON object per line)")
    parser.add_argument("--out", type=Path, default=Path("predictions.jsonl"), help="output file")
    parser.add_argument("--model", help="checkpoint directory (default: models/latest)")
    parser.add_argument("--format", choices=FORMATS, help="default: from the --out suffix, else jsonl")
    parser.add_argument("--resume", action="store_true", help="skip articles already in --out (JSONL only)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out (once the new one is complete)")
    parser.add_argument("--int8", action="store_true", help="int8 dynamic quantization (CPU)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk-sentences", type=int, default=2048,
                        help="sentences tagged together; a kill loses at most this chunk")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--roles", help="your roles table, merged over train/sources/roles.yaml (as sources.roles)")
    parser.add_argument("--no-sources", action="store_true", help="skip the named sources and quote kinds")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_command_logging()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        check_inputs(args.inputs)
        check_output(args.inputs, args.out, args.resume, args.overwrite)
        fmt = output_format(args.out, args.format)
        tagger = Tagger.from_pretrained(args.model, device=args.device, int8=args.int8, num_threads=args.threads,
                                        batch_size=args.batch_size, sources=not args.no_sources, roles=args.roles)
        result = predict_files(tagger, args.inputs, args.out, fmt, resume=args.resume, overwrite=args.overwrite,
                               chunk_sentences=args.chunk_sentences, progress=not args.quiet)
    except UserError as e:
        return exit_with(e)
    print(closing_summary(result, args.out), file=sys.stderr)
    return 1 if result.skipped else 0


if __name__ == "__main__":
    sys.exit(main())
