"""Tag new articles: every sentence gets topics and the speaker whose position it reports.

    python -m train.cli.predict [--model models/<run>] INPUT... --out predictions.jsonl
    python -m train.cli.predict INPUT... --engine ray --out DIR [--ray-address auto] [--actors 1:8]

Exit status: 0 all articles tagged, 1 some input skipped (each reported once on
stderr and counted at the end), 2 usage error (bad --model, missing input, an
existing --out without --overwrite or --resume, no article in the inputs, ...).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from transformers.utils import logging as transformers_logging

from train.errors import UsageError, UserError, exit_with
from train.logs import setup_command_logging
from train.modeling.tagger import Tagger
from train.prediction.ray_engine import RayOptions, check_part_folder, import_ray, parse_actors, predict_on_ray
from train.prediction.readers import check_inputs
from train.prediction.run import check_output, closing_summary, predict_files
from train.prediction.writers import FORMATS, output_format

RAY_FLAGS = ("ray_address", "actors", "cpus_per_actor", "gpus_per_actor")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train.cli.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="a .txt/.html article, a .jsonl file (text, optional id/outlet/date/url), "
                             "a directory (recursive), or - for stdin (one article or JSON object per line)")
    parser.add_argument("--out", type=Path, default=Path("predictions.jsonl"),
                        help="output file; with --engine ray, a folder of part files and summary.json")
    parser.add_argument("--model", help="checkpoint directory (default: models/latest)")
    parser.add_argument("--format", choices=FORMATS, help="default: from the --out suffix, else jsonl")
    parser.add_argument("--resume", action="store_true",
                        help="skip articles already in --out (JSONL only; with --engine ray, either format)")
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
    ray = parser.add_argument_group("Ray engine", 'with --engine ray (needs pip install -e ".[ray]")')
    ray.add_argument("--engine", choices=("local", "ray"), default="local",
                     help="local: this process; ray: a pool of Ray Data actors writing a folder of part files "
                          "(--out DIR, --format jsonl or parquet)")
    ray.add_argument("--ray-address", help="auto or ray://host:port: an existing cluster (default: start a local one)")
    ray.add_argument("--actors", help="N actors, or MIN:MAX for an autoscaling pool (default: 2)")
    ray.add_argument("--cpus-per-actor", type=float, help="CPUs each actor reserves; its torch threads (default: 1)")
    ray.add_argument("--gpus-per-actor", type=float, help="GPUs each actor reserves, e.g. 1 (default: 0)")
    return parser


def ray_options(args: argparse.Namespace) -> RayOptions:
    """The Ray flags checked before any work; each must come with --engine ray."""
    given = [name for name in RAY_FLAGS if getattr(args, name) is not None]
    if args.engine != "ray":
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} needs --engine ray")
        return RayOptions()
    if args.threads:
        raise UsageError("--threads is for the local engine; with --engine ray, --cpus-per-actor sets them")
    if args.format == "csv":
        raise UsageError("--engine ray writes --format jsonl or parquet part files")
    if args.cpus_per_actor is not None and args.cpus_per_actor <= 0:
        raise UsageError(f"--cpus-per-actor {args.cpus_per_actor:g}: must be above 0")
    if args.gpus_per_actor is not None and args.gpus_per_actor < 0:
        raise UsageError(f"--gpus-per-actor {args.gpus_per_actor:g}: must be 0 or more")
    low, high = parse_actors(args.actors or "2")
    import_ray()  # a missing extra is said before anything is read
    return RayOptions(address=args.ray_address, min_actors=low, max_actors=high,
                      cpus_per_actor=args.cpus_per_actor or 1.0, gpus_per_actor=args.gpus_per_actor or 0.0)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_command_logging()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        options = ray_options(args)
        check_inputs(args.inputs)
        fmt = output_format(args.out, args.format)
        if args.engine == "ray":
            check_part_folder(args.inputs, args.out, args.resume, args.overwrite)
            result = predict_on_ray(args.model, args.inputs, args.out, fmt, options, resume=args.resume,
                                    overwrite=args.overwrite, chunk_sentences=args.chunk_sentences,
                                    batch_size=args.batch_size, device=args.device, int8=args.int8,
                                    sources=not args.no_sources, roles=args.roles, progress=not args.quiet)
        else:
            check_output(args.inputs, args.out, args.resume, args.overwrite)
            tagger = Tagger.from_pretrained(args.model, device=args.device, int8=args.int8,
                                            num_threads=args.threads, batch_size=args.batch_size,
                                            sources=not args.no_sources, roles=args.roles)
            result = predict_files(tagger, args.inputs, args.out, fmt, resume=args.resume, overwrite=args.overwrite,
                                   chunk_sentences=args.chunk_sentences, progress=not args.quiet)
    except UserError as e:
        return exit_with(e)
    print(closing_summary(result, args.out), file=sys.stderr)
    return 1 if result.skipped else 0


if __name__ == "__main__":
    sys.exit(main())
