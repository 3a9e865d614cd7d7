"""`make agreement`: inter-annotator agreement on the double-annotated articles, and the adjudication check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from train.config import DEFAULT_CONFIG, load_config
from train.data.agreement import agreement, read_labelling, source_agreement, unapplied_rulings
from train.data.annotations import DataError
from train.data.scheme import load_scheme
from train.errors import UserError, exit_with
from train.logs import setup_command_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cohen's kappa (speaker) and micro-F1 (topics) between two annotators.")
    parser.add_argument("--first", default="data/agreement/first", help="the first annotator's files")
    parser.add_argument("--second", default="data/agreement/second", help="the second annotator's files")
    parser.add_argument("--adjudication", default="data/agreement/adjudication.jsonl")
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    args = parser.parse_args(argv)
    setup_command_logging()
    try:
        data = load_config(args.config).data
        scheme = load_scheme(data.labels)
        first, second = read_labelling(Path(args.first), scheme), read_labelling(Path(args.second), scheme)
        result = agreement(first, second, scheme)
        sources = source_agreement(first, second)
        gold = read_labelling(Path(data.annotations_dir), scheme)
        problems = unapplied_rulings(Path(args.adjudication), gold)
        if problems:
            raise DataError(problems)
    except UserError as e:
        return exit_with(e)
    print(f"{result.articles} articles, {result.sentences} sentences labelled independently by two annotators")
    print(f"speaker: Cohen's kappa {result.speaker_kappa:.3f} (target >= 0.80), raw agreement "
          f"{result.speaker_accuracy:.3f}")
    print(f"topics:  micro-F1 {result.topic_micro_f1:.3f} (target >= 0.85); per topic: "
          + ", ".join(f"{t} {f:.2f}" for t, f in result.topic_f1.items()))
    if sources is None:
        print(f"sources: skipped; {args.second} carries no sources/quote labels yet (data/GUIDELINES.md §9), so "
              "name and quote-kind agreement cannot be measured")
    else:
        print(f"sources: name micro-F1 {sources.name_f1:.3f}, first source agreement {sources.first_source_agreement:.3f} "
              f"({sources.attributed} attributed sentences); quote kind accuracy {sources.quote_accuracy:.3f}, "
              f"Cohen's kappa {sources.quote_kappa:.3f} ({sources.sentences} sentences both labelled)")
    source_disagreements = 0 if sources is None else len(sources.disagreements)
    print(f"{len(result.disagreements)} topic/speaker and {source_disagreements} sources/quote disagreements, each "
          f"adjudicated in {args.adjudication} and applied to {data.annotations_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
