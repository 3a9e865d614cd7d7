"""Scores of predicted sources against labelled ones (data/GUIDELINES.md §9)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from train.sources.schema import Source


@dataclass(frozen=True)
class SourceScores:
    sentences: int
    name_precision: float  # micro over (sentence, canonical name) pairs
    name_recall: float
    name_f1: float
    mention_f1: float  # exact (start, end) of the mentions the sentence names
    mention_overlap_f1: float  # a predicted mention that overlaps a labelled one counts
    quote_accuracy: float  # direct / indirect / none, every sentence
    first_source_accuracy: float  # sentences whose speaker is not `none`: the first predicted name is the labelled one
    attributed: int  # those sentences
    none_without_source: float  # sentences whose speaker is `none`: share with no predicted source
    unattributed: int  # those sentences

    def to_dict(self) -> dict:
        return asdict(self)


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _ratio(numerator: int, denominator: int) -> float:
    # an empty set of predictions (or of labels) is neither right nor wrong: score it as perfect, as sklearn's
    # zero_division=1 does for the topic metrics
    return numerator / denominator if denominator else 1.0


def first_source_right(labels: Sequence[Source], guesses: Sequence[Source]) -> bool:
    """The first predicted name is the labelled first source (the acceptance measure's first share)."""
    return bool(labels) and bool(guesses) and labels[0].name == guesses[0].name


def score_sources(gold: Sequence[Sequence[Source]], gold_quotes: Sequence[str], gold_speakers: Sequence[str],
                  predicted: Sequence[Sequence[Source]], predicted_quotes: Sequence[str]) -> SourceScores:
    """Scores over aligned sentences: labelled sources, quote kinds and speakers against the predicted ones."""
    if not (len(gold) == len(gold_quotes) == len(gold_speakers) == len(predicted) == len(predicted_quotes)):
        raise ValueError("gold and predicted sources must cover the same sentences")
    hit = n_pred = n_gold = 0
    span_hit = span_pred = span_gold = overlap_pred_hit = overlap_gold_hit = 0
    first_hits = attributed = none_clean = unattributed = quote_hits = 0
    for labels, speaker, guesses, quote, guessed_quote in zip(gold, gold_speakers, predicted, gold_quotes,
                                                              predicted_quotes):
        names, guessed = {s.name for s in labels}, {s.name for s in guesses}
        hit, n_pred, n_gold = hit + len(names & guessed), n_pred + len(guessed), n_gold + len(names)
        spans = {(s.start, s.end) for s in labels if s.start is not None}
        guessed_spans = {(s.start, s.end) for s in guesses if s.start is not None}
        span_hit += len(spans & guessed_spans)
        span_pred, span_gold = span_pred + len(guessed_spans), span_gold + len(spans)
        overlap_pred_hit += sum(any(a < d and c < b for c, d in spans) for a, b in guessed_spans)
        overlap_gold_hit += sum(any(a < d and c < b for c, d in guessed_spans) for a, b in spans)
        quote_hits += quote == guessed_quote
        if speaker == "none":
            unattributed += 1
            none_clean += not guesses
        else:
            attributed += 1
            first_hits += first_source_right(labels, guesses)
    precision, recall = _ratio(hit, n_pred), _ratio(hit, n_gold)
    span_p, span_r = _ratio(span_hit, span_pred), _ratio(span_hit, span_gold)
    overlap_p, overlap_r = _ratio(overlap_pred_hit, span_pred), _ratio(overlap_gold_hit, span_gold)
    return SourceScores(
        sentences=len(gold), name_precision=precision, name_recall=recall, name_f1=_f1(precision, recall),
        mention_f1=_f1(span_p, span_r), mention_overlap_f1=_f1(overlap_p, overlap_r),
        quote_accuracy=_ratio(quote_hits, len(gold)), first_source_accuracy=_ratio(first_hits, attributed),
        attributed=attributed, none_without_source=_ratio(none_clean, unattributed), unattributed=unattributed)
