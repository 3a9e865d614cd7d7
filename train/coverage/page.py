"""`make coverage`: the analyst's page over a predictions file or part-file folder, and the CSV tables behind it.

    OUT/index.html     self-contained (embedded PNGs and data; no request leaves the page)
    OUT/shares.csv     every estimate with its 95% interval, the raw share and count beside it, the method, what
                       the interval covers, where the error rates come from and how many sentences they rest on
    OUT/articles.csv   per article: outlet, date, url, sentences, raw speaker and topic shares
    OUT/sources.csv    when the predictions carry sources: top sources with intervals, diversity per outlet
    OUT/coverage.json  what the page was built from (also marks OUT as this tool's, safe to replace), and the
                       extractor's scores on LABELLED's source labels when it carries them
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

from train.atomic import write_directory_atomically
from train.coverage.calibration import SPEAKERS, HeadChoice
from train.coverage.estimates import Correction, Corrections
from train.coverage.figures import heatmap_figure, small_multiples_figure, stacked_shares_figure, time_figure
from train.coverage.quantify import DESCRIPTIONS
from train.coverage.sources import TOP_OVERALL, TOP_PER_OUTLET, GroupSources, SourceCheck, group_sources
from train.coverage.tables import (
    N_RESAMPLES,
    SAMPLE_SIZE,
    Corpus,
    GroupShares,
    Layout,
    group_shares,
    grouped,
    period_keys,
    read_corpus,
)
from train.data.scheme import LabelScheme
from train.errors import UserError
from train.evaluation.stats import SEED
from train.pages import page_environment

MANIFEST = "coverage.json"
RANKED_ARTICLES = 10
MIN_RANKED_SENTENCES = 5
MAX_SMALL_MULTIPLES = 60
ALL_ARTICLES = "all articles"

log = logging.getLogger(__name__)


class CoverageError(UserError):
    """An output directory the report may not write into."""


def default_out_dir(predictions: str | Path) -> Path:
    return Path("reports") / f"coverage-{Path(predictions).stem}"


def check_out_dir(out_dir: Path) -> None:
    """Only an empty directory or an earlier coverage report may be replaced: nothing else the user had."""
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file())):
        raise CoverageError(f"{out_dir}: exists and is not a coverage report; choose another OUT=<dir>")


def _cells(group: GroupShares, kind: str, labels: tuple[str, ...]) -> list[dict]:
    return [{"estimate": group.estimate[kind][i], "low": group.low[kind][i], "high": group.high[kind][i],
             "raw": group.raw[kind][i], "count": int(group.counts[kind][i])} for i in range(len(labels))]


def _table(groups: list[GroupShares], kind: str, labels: tuple[str, ...]) -> list[dict]:
    return [{"name": g.name, "articles": g.articles, "sentences": g.sentences, "cells": _cells(g, kind, labels)}
            for g in groups]


def _pair_rows(group: GroupShares, scheme: LabelScheme) -> list[dict]:
    rows = []
    for t, topic in enumerate(scheme.topics):
        rows.append({"name": topic, "sentences": int(group.counts["topic"][t]), "cells": [
            {"estimate": group.estimate["pair"][t, s], "low": group.low["pair"][t, s],
             "high": group.high["pair"][t, s], "raw": group.raw["pair"][t, s],
             "count": int(group.counts["pair"][t, s])} for s in range(len(scheme.speakers))]})
    return rows


def rankings(corpus: Corpus, layout: Layout) -> list[dict]:
    """For every topic and speaker, the articles with the highest share of their sentences on it."""
    parts = layout.split(corpus.features.astype(float))
    n = parts.sentences[:, 0]
    eligible = n >= MIN_RANKED_SENTENCES
    result = []
    for kind, labels, counts in (("topic", corpus.scheme.topics, parts.topic_counts),
                                 ("speaker", corpus.scheme.speakers, parts.speaker_counts)):
        for column, label in enumerate(labels):
            share = np.where(eligible, counts[:, column] / n, -1)
            top = [i for i in np.lexsort((-counts[:, column], -share))[:RANKED_ARTICLES] if share[i] > 0]
            result.append({"kind": kind, "label": label, "articles": [
                {"article": corpus.articles[i], "share": share[i], "count": int(counts[i, column])} for i in top]})
    return result


def interval_covers(correction: Correction) -> str:
    calib = correction.choice.calibration
    covered = ["the articles", f"the {calib.sentences} labelled sentences, by article"]
    if correction.shift is not None:
        kind = "event" if calib.fold_kind == "event" else "group of articles"
        covered.append(f"the method's systematic error on a held-out {kind}")
    return "; ".join(covered)


def _write_shares_csv(path: Path, scopes: list[tuple[str, list[GroupShares]]], scheme: LabelScheme,
                      corrections: Corrections) -> None:
    def details(correction: Correction) -> list:
        calib = correction.choice.calibration
        return [correction.method, interval_covers(correction), calib.origin,
                "; ".join(f"{source}: {n}" for source, n in calib.counts.items()),
                f"{correction.choice.expected_error:.4f}"]
    speaker, topics = details(corrections.speaker), details(corrections.topics)
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["scope", "group", "articles", "sentences", "measure", "topic", "speaker", "estimate",
                         "low", "high", "raw_share", "raw_count", "method", "interval_covers", "error_rate_source",
                         "labelled_sentences", "expected_abs_error"])

        def number(value) -> str:
            return "" if value is None or math.isnan(value) else f"{value:.4f}"
        for scope, groups in scopes:
            for g in groups:
                base = [scope, g.name, g.articles, g.sentences]
                for s, speaker_name in enumerate(scheme.speakers):
                    writer.writerow([*base, "speaker_share", "", speaker_name, *map(number, (
                        g.estimate["speaker"][s], g.low["speaker"][s], g.high["speaker"][s],
                        g.raw["speaker"][s])), int(g.counts["speaker"][s]), *speaker])
                for t, topic in enumerate(scheme.topics):
                    writer.writerow([*base, "topic_share", topic, "", *map(number, (
                        g.estimate["topic"][t], g.low["topic"][t], g.high["topic"][t],
                        g.raw["topic"][t])), int(g.counts["topic"][t]), *topics])
                    for s, speaker_name in enumerate(scheme.speakers):
                        writer.writerow([*base, "speaker_share_within_topic", topic, speaker_name, *map(number, (
                            g.estimate["pair"][t, s], g.low["pair"][t, s], g.high["pair"][t, s],
                            g.raw["pair"][t, s])), int(g.counts["pair"][t, s]), *speaker])


def _write_sources_csv(path: Path, groups: list[GroupSources]) -> None:
    def number(value: float) -> str:
        return "" if math.isnan(value) else f"{value:.4f}"
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["scope", "group", "attributed_sentences", "measure", "source", "sentences", "value", "low",
                         "high"])
        for g in groups:
            base = ["overall" if g.name == ALL_ARTICLES else "outlet", g.name, g.attributed]
            for measure, value in (("distinct_sources", float(g.distinct)), ("official_share", g.official_share),
                                   ("concentration", g.concentration), ("direct_share", g.direct_share),
                                   ("indirect_share", g.indirect_share)):
                writer.writerow([*base, measure, "", "", number(value), "", ""])
            for source in g.top:
                writer.writerow([*base, "source_share", source.name, source.sentences, number(source.share),
                                 number(source.low), number(source.high)])


def _write_articles_csv(path: Path, corpus: Corpus, layout: Layout) -> None:
    parts = layout.split(corpus.features.astype(float))
    n = parts.sentences
    speaker_share, topic_share = parts.speaker_counts / n, parts.topic_counts / n
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["article", "outlet", "date", "url", "sentences",
                         *(f"speaker:{s}" for s in corpus.scheme.speakers), *(f"topic:{t}" for t in corpus.scheme.topics)])
        for i, article in enumerate(corpus.articles):
            writer.writerow([article.id, article.outlet, article.date or "", article.url, article.sentences,
                             *(f"{v:.4f}" for v in speaker_share[i]), *(f"{v:.4f}" for v in topic_share[i])])


def _method_notes(correction: Correction) -> dict:
    choice: HeadChoice = correction.choice
    return {"head": "Speakers" if choice.head == SPEAKERS else "Topics", "method": choice.method,
            "description": DESCRIPTIONS[choice.method], "origin": choice.calibration.origin,
            "counts": choice.calibration.counts, "expected_error": choice.expected_error,
            "fold_kind": choice.calibration.fold_kind, "covers": interval_covers(correction),
            "scores": [{"method": s.method, "description": DESCRIPTIONS[s.method], "held_out": s.held_out_error,
                        "artificial": s.artificial_error, "chosen": s.method == choice.method}
                       for s in choice.scores],
            "warnings": choice.warnings}


def build_coverage(predictions: str | Path, scheme: LabelScheme,
                   corrections: Corrections | Callable[[Corpus], Corrections], model: str,
                   out_dir: str | Path | None = None, n_resamples: int = N_RESAMPLES, sample_size: int = SAMPLE_SIZE,
                   engine: str = "local", keep_texts_of: set[str] = frozenset(),
                   check_sources: Callable[[Corpus], SourceCheck | None] | None = None) -> Path:
    """Read the predictions once, estimate every share with intervals, and write the report directory.

    `predictions` is a file or a folder of part files; with engine="ray" each part is reduced to
    per-article sums on Ray, and the report is the one the local reduction gives.

    `corrections` may be a function of the corpus: fitting them runs the checkpoint on labelled
    sentences (checked against the corpus's texts of `keep_texts_of`), so it waits until the output
    directory and the predictions file have been checked. `check_sources(corpus)` measures the extractor on
    labelled sentences of the coverage, for the "Who is quoted" section.
    """
    out_dir = Path(out_dir) if out_dir else default_out_dir(predictions)
    check_out_dir(out_dir)
    started = time.perf_counter()
    corpus = read_corpus(predictions, scheme, sample_size, engine=engine, keep_texts_of=keep_texts_of)
    log.info("read %d articles, %d sentences in %.1f s", len(corpus.articles), corpus.sentences,
             time.perf_counter() - started)
    if callable(corrections):
        corrections = corrections(corpus)
        log.info("fitted the corrections in %.1f s", time.perf_counter() - started)
    layout = Layout(len(scheme.topics), len(scheme.speakers))
    overall = group_shares(ALL_ARTICLES, corpus.features, layout, corrections, n_resamples)
    outlets = [group_shares(name, corpus.features[rows], layout, corrections, n_resamples)
               for name, rows in grouped(corpus, [a.outlet for a in corpus.articles]).items()]
    keys, unit = period_keys([a.date for a in corpus.articles])
    periods = [group_shares(name, corpus.features[rows], layout, corrections, n_resamples)
               for name, rows in grouped(corpus, keys).items()]
    undated = keys.count(None)
    sources = []
    if corpus.sources and len(corpus.sources) == len(corpus.articles):
        sources = [group_sources(ALL_ARTICLES, corpus.sources, TOP_OVERALL, n_resamples, SEED)] + [
            group_sources(name, [corpus.sources[i] for i in rows], TOP_PER_OUTLET, n_resamples, SEED)
            for name, rows in grouped(corpus, [a.outlet for a in corpus.articles]).items()]
    source_accuracy = check_sources(corpus) if sources and check_sources else None
    log.info("estimated %d outlets and %d periods in %.1f s", len(outlets), len(periods),
             time.perf_counter() - started)

    figures = {
        "speakers": stacked_shares_figure([overall, *outlets], scheme.speakers, "speaker",
                                          "% of sentences, by speaker (estimated)"),
        "topics": stacked_shares_figure([overall, *outlets], scheme.topics, "topic",
                                        "% of sentences carrying each topic (estimated; a sentence may carry several)"),
        "heatmap": heatmap_figure(overall, scheme.topics, scheme.speakers),
        "small_multiples": small_multiples_figure(outlets[:MAX_SMALL_MULTIPLES], scheme.topics, scheme.speakers),
    }
    if len(periods) > 1:
        figures["time_speakers"] = time_figure(periods, scheme.speakers, "speaker", unit)
        figures["time_topics"] = time_figure(periods, scheme.topics, "topic", unit)
    context = {
        "title": f"Coverage: {Path(predictions).name}", "source": str(predictions), "model": model,
        "generated": f"{datetime.now():%Y-%m-%d %H:%M}", "articles": len(corpus.articles),
        "sentences": corpus.sentences, "scheme": scheme, "methods": [_method_notes(corrections.speaker), _method_notes(corrections.topics)],
        "n_resamples": n_resamples, "figures": figures, "outlet_count": len(outlets),
        "small_multiples_shown": min(len(outlets), MAX_SMALL_MULTIPLES),
        "speaker_rows": _table([overall, *outlets], "speaker", scheme.speakers),
        "topic_rows": _table([overall, *outlets], "topic", scheme.topics),
        "pair_rows": _pair_rows(overall, scheme), "unit": unit, "periods": len(periods), "undated": undated,
        "speaker_period_rows": _table(periods, "speaker", scheme.speakers),
        "topic_period_rows": _table(periods, "topic", scheme.topics),
        "rankings": rankings(corpus, layout), "min_ranked": MIN_RANKED_SENTENCES, "ranked": RANKED_ARTICLES,
        "sample": corpus.sample, "sampled": corpus.sampled, "outlets": [g.name for g in outlets],
        "sources": sources, "source_names": sorted({s.name for g in sources for s in g.top}),
        "source_check": source_accuracy,
    }
    html = page_environment("train.coverage").get_template("coverage.html.j2").render(context)
    manifest = {"predictions": str(predictions), "model": model, "articles": len(corpus.articles),
                "sentences": corpus.sentences, "outlets": len(outlets), "periods": len(periods),
                "speaker_method": corrections.speaker.method, "topic_method": corrections.topics.method,
                "speaker_expected_abs_error": corrections.speaker.choice.expected_error,
                "topic_expected_abs_error": corrections.topics.choice.expected_error,
                "error_rate_source": {"speaker": corrections.speaker.choice.calibration.counts,
                                      "topics": corrections.topics.choice.calibration.counts},
                "sentence_sample": len(corpus.sample), "resamples": n_resamples,
                "source_check": source_accuracy and dataclasses.asdict(source_accuracy)}

    def write(staging: Path) -> None:
        (staging / "index.html").write_text(html, encoding="utf-8")
        _write_shares_csv(staging / "shares.csv", [("overall", [overall]), ("outlet", outlets), (unit, periods)],
                          scheme, corrections)
        _write_articles_csv(staging / "articles.csv", corpus, layout)
        if sources:
            _write_sources_csv(staging / "sources.csv", sources)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")

    write_directory_atomically(out_dir, write)
    log.info("wrote %s in %.1f s", out_dir, time.perf_counter() - started)
    return out_dir
