"""The labelled sentences the corrections are fitted on: the run's held-out splits, or a sample of the coverage.

Held-out splits are every labelled sentence the weights never trained on; their event
families give the leave-event-out folds. A sample of the coverage itself (`LABELLED=`,
in the annotation format) is the same kind of text as what is being counted, so its
error rates need no shift allowance; a handful of its sentences may still measure
worse than pooling them with the held-out splits, which `calibration.choose` decides.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from train.coverage.calibration import Calibration, article_folds, calibration, pooled
from train.coverage.estimates import Corrections, fit_corrections
from train.coverage.sources import SourceCheck, predicted_source, source_check
from train.coverage.tables import Corpus
from train.data.annotations import parse_lines, read_records
from train.data.scheme import LabelScheme
from train.evaluation.scoring import EvaluationError, LabelledData, check_scheme, predict, records_data, split_data
from train.evaluation.stats import SEED
from train.modeling.checkpoint import Checkpoint
from train.modeling.outputs import HeadLabels
from train.sources.schema import sources_from_record

HELD_OUT_SPLITS = ("validation", "test")
log = logging.getLogger(__name__)
MIN_EVENT_FAMILIES = 3
HELD_OUT, LABELLED = "held-out splits", "labelled sample of the coverage"


class LabelledSampleError(EvaluationError):
    """A LABELLED file that does not fit the predictions or the checkpoint; the message names file and line."""


def _concatenate(parts: list[LabelledData]) -> LabelledData:
    first = parts[0]
    return LabelledData(
        name="+".join(p.name for p in parts), source=" and ".join(p.source for p in parts), scheme=first.scheme,
        ids=[i for p in parts for i in p.ids], articles=[a for p in parts for a in p.articles],
        outlets=[o for p in parts for o in p.outlets], texts=[t for p in parts for t in p.texts],
        contexts=[c for p in parts for c in p.contexts],
        gold=HeadLabels.concatenate([p.gold for p in parts]),
        event_families=[f for p in parts for f in (p.event_families or [""] * len(p))])


def _calibration(checkpoint: Checkpoint, data: LabelledData, origin: str, same_coverage: bool, folds: np.ndarray,
                 fold_kind: str, source: str) -> Calibration:
    predictions, _ = predict(checkpoint, data)
    return calibration(origin, same_coverage, [f"{source}:{a}" for a in data.articles], folds, fold_kind,
                       predictions.probabilities, predictions.labels, data.gold, source)


def held_out_calibration(checkpoint: Checkpoint) -> Calibration:
    """The validation and test splits pooled, folded by event family (by article when families are missing).

    Pooling doubles the sentences the rates rest on; the price is a slight optimism,
    since the topic thresholds were tuned on the validation split.
    """
    data = _concatenate([split_data(checkpoint.train_config.data, split, checkpoint.data_fingerprint, checkpoint.path)
                         for split in HELD_OUT_SPLITS])
    check_scheme(checkpoint, data)
    families = np.asarray(data.event_families, dtype=str)
    if "" in families or len(set(families)) < MIN_EVENT_FAMILIES:
        folds, kind = article_folds(np.asarray(data.articles, dtype=str)), "article"
    else:
        folds, kind = families, "event"
    origin = f"the held-out splits of {checkpoint.path} ({len(data)} sentences of authored articles on other events)"
    return _calibration(checkpoint, data, origin, False, folds, kind, HELD_OUT)


def labelled_calibration(checkpoint: Checkpoint, path: str | Path, predicted_texts: dict[tuple[str, int], str],
                         predicted_articles: set[str]) -> Calibration:
    """Sentences of the coverage labelled in the annotation format, checked against the predictions file.

    A record whose article is in the predictions must be the same sentence there (same text at
    that index): otherwise its labels describe some other text than the one being counted.
    """
    path = Path(path)
    if not path.is_file():
        raise LabelledSampleError(f"{path}: labelled file not found; label a random sample with "
                                  "`make suggest ARGS=--strategy random` and the annotation loop")
    records, problems = read_records(path, checkpoint.scheme)
    if problems:
        raise LabelledSampleError(f"{problems[0]} (labels must be in the scheme of checkpoint {checkpoint.path})"
                                  + (f"; {len(problems) - 1} more problems" if len(problems) > 1 else ""))
    if not records:
        raise LabelledSampleError(f"{path}: no labelled sentences; expected one JSON object per line")
    for where, record in records:
        article, index = str(record["article"]), record["index"]
        if article not in predicted_articles:
            continue
        text = predicted_texts.get((article, index))
        if text is None:
            raise LabelledSampleError(f"{where}: article {article!r} has no sentence {index} in the predictions; "
                                      "label sentences as `make predict` split them")
        if text != record["text"]:
            raise LabelledSampleError(f"{where}: sentence {index} of article {article!r} reads {text[:60]!r} in the "
                                      f"predictions, not {record['text'][:60]!r}; relabel it from the predictions file")
    data = records_data(path, [record for _, record in records], checkpoint.scheme)
    articles = np.asarray(data.articles, dtype=str)
    origin = f"{path} ({len(data)} labelled sentences of {len(set(data.articles))} articles of this coverage)"
    return _calibration(checkpoint, data, origin, True, article_folds(articles), "article", LABELLED)


def candidate_calibrations(held_out: Calibration, labelled: Calibration | None) -> list[Calibration]:
    """What the corrections may be fitted on: the held-out splits, or the coverage's sample alone or pooled."""
    return [held_out] if labelled is None else [labelled, pooled(labelled, held_out)]


def checkpoint_corrections(checkpoint: Checkpoint, labelled: str | Path | None, corpus: Corpus, n_resamples: int,
                           seed: int = SEED) -> Corrections:
    """The corrections of a coverage page: fitted on the run's held-out splits, or on LABELLED (alone or pooled).

    With LABELLED, a run whose held-out splits can no longer be rebuilt (its annotations changed since)
    is corrected with the sample alone, and the log says why.
    """
    if labelled is None:
        return fit_corrections([held_out_calibration(checkpoint)], checkpoint.scheme, n_resamples, seed)
    sample = labelled_calibration(checkpoint, labelled, corpus.texts, {a.id for a in corpus.articles})
    try:
        candidates = candidate_calibrations(held_out_calibration(checkpoint), sample)
    except EvaluationError as e:
        log.warning("the held-out splits are not used, only %s: %s", labelled, e)
        candidates = [sample]
    return fit_corrections(candidates, checkpoint.scheme, n_resamples, seed)


def labelled_source_check(path: str | Path, corpus: Corpus, scheme: LabelScheme, n_resamples: int) -> SourceCheck | None:
    """The extractor's scores on the sentences of LABELLED that carry source labels and are in the predictions
    with predicted sources; None when there are none (no source labels, or predictions written without sources).
    LABELLED has been validated against the predictions by `labelled_calibration` before this runs."""
    records, _ = read_records(Path(path), scheme)
    labelled = [record for _, record in records if "quote" in record
                and (str(record["article"]), record["index"]) in corpus.kept_sources]
    if not labelled:
        return None
    predicted = [corpus.kept_sources[(str(r["article"]), r["index"])] for r in labelled]
    return source_check(
        f"{path} ({len(labelled)} sentences with source labels)", [str(r["article"]) for r in labelled],
        [sources_from_record(r) for r in labelled], [r["quote"] for r in labelled], [r["speaker"] for r in labelled],
        [[predicted_source(s) for s in p.sources] for p in predicted], [p.quote for p in predicted], n_resamples)


def labelled_articles(path: str | Path | None) -> set[str]:
    """The articles a LABELLED file names, so the predictions pass keeps their sentences to check against."""
    if path is None or not Path(path).is_file():
        return set()
    articles = set()
    for _, record, problem in parse_lines(Path(path)):
        if not problem and isinstance(record, dict) and "article" in record:
            articles.add(str(record["article"]))
    return articles
