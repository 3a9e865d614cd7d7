"""`make evaluate`: score a checkpoint on its test split or on any labelled JSONL file.

    python -m train.cli.evaluate --model models/<run> [--data other_outlet.jsonl] [--out metrics.json]

Writes metrics.json (by default to <model>/eval/<data name>/) and, beside it,
predictions.jsonl with every sentence's gold and predicted labels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from train.errors import UserError, exit_with
from train.evaluation.scoring import evaluate_checkpoint, write_results
from train.logs import setup_command_logging
from train.modeling.checkpoint import open_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score a checkpoint on the test split or a labelled JSONL file.")
    parser.add_argument("--model", help="checkpoint directory (default: models/latest)")
    parser.add_argument("--data", help="labelled JSONL in the annotation format (default: the test split)")
    parser.add_argument("--out", help="metrics.json path (default: <model>/eval/<data name>/metrics.json)")
    args = parser.parse_args(argv)
    setup_command_logging()
    try:
        checkpoint = open_checkpoint(args.model)
        result = evaluate_checkpoint(checkpoint, args.data)
    except UserError as e:
        return exit_with(e)
    data_name = Path(args.data).stem if args.data else "test"
    out = Path(args.out) if args.out else checkpoint.path / "eval" / data_name / "metrics.json"
    write_results(result, out)
    topics, speaker = result["topics"], result["speaker"]
    print(f"{out}: {result['n_sentences']} sentences, topic micro-F1 {topics['micro_f1']:.3f} "
          f"macro-F1 {topics['macro_f1']:.3f}, speaker accuracy {speaker['accuracy']:.3f} "
          f"macro-F1 {speaker['macro_f1']:.3f}, ECE {result['speaker_ece']:.3f}, "
          f"{result['sentences_per_second']:.1f} sentences/s")
    for kind, scores in result["by_source_kind"].items():
        print(f"  {kind}: {scores['n_sentences']} sentences, topic macro-F1 {scores['topic_macro_f1']:.3f}, "
              f"speaker macro-F1 {scores['speaker_macro_f1']:.3f}")
    if "sources" in result:
        overall = result["sources"]["overall"]
        print(f"  sources: name F1 {overall['name_f1']:.3f}, mention F1 {overall['mention_f1']:.3f}, quote accuracy "
              f"{overall['quote_accuracy']:.3f}, first source {overall['first_source_accuracy']:.3f}, none without "
              f"source {overall['none_without_source']:.3f} (roles {result['sources']['roles_version']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
