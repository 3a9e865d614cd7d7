"""The report's section on named sources: each system's predicted speakers gate the same source extractor."""

from __future__ import annotations

from train.evaluation.scoring import LabelledData, score_sources
from train.evaluation.sections import Section, System, Table

COLUMNS = (("Name P", "name_precision"), ("Name R", "name_recall"), ("Name F1", "name_f1"),
           ("Mention F1", "mention_f1"), ("Mention overlap F1", "mention_overlap_f1"),
           ("Quote accuracy", "quote_accuracy"), ("First source", "first_source_accuracy"),
           ("None without source", "none_without_source"))


def sources_section(systems: list[System], data: LabelledData) -> list[Section]:
    """One table, a row per system (and per source kind); none when the data carries no source labels."""
    if data.source_gold is None:
        return []
    rows, version = [], ""
    for system in systems:
        evaluation, _ = score_sources(data, system.predictions)
        version = evaluation.roles_version
        for part, scores in [("all", evaluation.overall), *evaluation.by_source_kind.items()]:
            values = scores.to_dict()
            rows.append([system.label, part, str(scores.sentences), *[f"{values[key]:.3f}" for _, key in COLUMNS]])
    intro = ("Named sources (data/GUIDELINES.md §9) found by the rule-based extractor, gated by each system's "
             "predicted speaker: a `none` sentence gets no source. Name P/R/F1: canonical names per sentence; "
             "mention F1: exact character spans; first source: sentences whose gold speaker is not `none` whose "
             "first predicted name is the labelled one; none without source: gold `none` sentences left without "
             f"a source. Roles table {version}.")
    header = ["System", "Sentences", "n", *[label for label, _ in COLUMNS]]
    return [Section("sources", "Named sources and quotes", intro, [Table(header, rows)])]
