"""`make sources`: the source extractor measured on the labelled corpus (data/GUIDELINES.md §9).

    python -m train.cli.sources [--model models/<run>] [--out reports/sources/measure.json]

Three gates: the gold speaker classes, predicted ones (the checkpoint's with --model, which has seen its
training articles, so its rows are also scored over the articles it did not train on; otherwise a TF-IDF
baseline trained without the sentence's event family) and none.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from train.atomic import write_file_atomically
from train.config import DEFAULT_CONFIG, load_config
from train.data.build import labelled_examples
from train.errors import UserError, exit_with
from train.evaluation.source_measure import (
    articles_of,
    checkpoint_speakers,
    extract_all,
    leave_event_out_speakers,
    leave_out_speakers,
    measure,
    unseen_articles,
)
from train.logs import setup_command_logging
from train.sources.extract import PREDICTED_SPEAKER_MIN_CONFIDENCE, SourceExtractor
from train.sources.roles import load_roles

COLUMNS = (("name P", "name_precision"), ("name R", "name_recall"), ("name F1", "name_f1"),
           ("mention F1", "mention_f1"), ("overlap F1", "mention_overlap_f1"), ("quote acc", "quote_accuracy"),
           ("first source", "first_source_accuracy"), ("none clean", "none_without_source"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure the source extractor on the labelled corpus.")
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--model", action="append", help="a checkpoint whose predicted speakers gate the extractor; "
                        "given several times, each sentence is gated by the first whose data does not hold its article "
                        "(checkpoints trained each without one event family: leave-event-out)")
    parser.add_argument("--out", default="reports/sources/measure.json")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. sources.roles=my_roles.yaml")
    args = parser.parse_args(argv)
    setup_command_logging()
    try:
        config = load_config(args.config, args.overrides)
        examples = labelled_examples(config.data)
        roles = load_roles(config.sources.roles)
        extractor = SourceExtractor(roles)
        gated = SourceExtractor(roles, min_confidence=PREDICTED_SPEAKER_MIN_CONFIDENCE)  # as the Tagger runs it
        articles = articles_of(examples)
        unseen: set[str] = set()
        if args.model and len(args.model) > 1:
            predicted, confidence = leave_out_speakers(args.model, articles)
            how = f"predicted, leave-out ({len(args.model)} checkpoints)"
        elif args.model:
            predicted, confidence = checkpoint_speakers(args.model[0], articles)
            unseen = unseen_articles(args.model[0])
            how = f"predicted by {Path(args.model[0]).name}"
        else:
            predicted, confidence = leave_event_out_speakers(examples)
            how = "predicted (TF-IDF, leave-event-out)"
        results = [
            *measure(examples, extract_all(extractor, articles, lambda r: r["speaker"]), "gold speakers"),
            *measure(examples, extract_all(gated, [rows for rows in articles if rows[0]["id"] in predicted],
                                           lambda r: predicted[r["id"]], lambda r: confidence[r["id"]]), how, unseen),
            *measure(examples, extract_all(extractor, articles, None), "no gate"),
        ]
    except UserError as e:
        return exit_with(e)
    print(f"roles table {roles.version}; {len(examples)} labelled sentences")
    print(f"{'gate':40} {'part':42} " + " ".join(f"{name:>12}" for name, _ in COLUMNS))
    for r in results:
        values = r.scores.to_dict()
        print(f"{r.gate:40} {r.part:42} " + " ".join(f"{values[key]:12.3f}" for _, key in COLUMNS))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = json.dumps({"roles_version": roles.version, "results": [asdict(r) for r in results]}, ensure_ascii=False,
                        indent=1)
    write_file_atomically(out, lambda path: path.write_text(report, encoding="utf-8"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
