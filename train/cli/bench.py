"""`make bench`: training throughput and prediction speed on a real architecture (random weights)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from train.bench.prediction import (
    format_benchmark,
    format_navec_benchmark,
    run_navec_benchmark,
    run_prediction_benchmark,
)
from train.bench.training import DEFAULT_ARCH, MODES, format_training, run_training_benchmark, train_throughput


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Training and prediction speed benchmarks.")
    parser.add_argument("--arch", default=DEFAULT_ARCH, help="model directory with config and tokenizer")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--single", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--skip-prediction", action="store_true")
    parser.add_argument("--navec-only", action="store_true", help="only the navec-vs-rubert-tiny2 prediction speed")
    args = parser.parse_args(argv)
    if not Path(args.arch).is_dir():
        print(f"error: {args.arch}: architecture folder not found (see ../shared/models/README.md)", file=sys.stderr)
        return 2
    if args.single:
        print(json.dumps(train_throughput(args.single, args.arch, args.steps, args.batch_size)))
        return 0
    if args.navec_only:
        print(format_navec_benchmark(run_navec_benchmark(arch=args.arch)))
        return 0
    training = run_training_benchmark(args.arch, args.steps, args.batch_size)
    print(format_training(training))
    results = {"device": "cuda" if torch.cuda.is_available() else "cpu", "training": training}
    if not args.skip_prediction:
        results["prediction"] = run_prediction_benchmark(arch=args.arch)
        print(format_benchmark(results["prediction"]))
        results["navec_prediction"] = run_navec_benchmark(arch=args.arch)
        print(format_navec_benchmark(results["navec_prediction"]))
    out = Path("bench") / f"{Path(args.arch).name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
