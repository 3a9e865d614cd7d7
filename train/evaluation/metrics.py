"""Metrics as small pure functions on numpy arrays, built on scikit-learn.

The hub-hosted `evaluate` metrics cannot be loaded offline, and these are what
the model card, `metrics.json` and the reports all quote, so they live here once.

Macro averages run over the labels that occur in the gold labels or the
predictions of the data being scored: with a few dozen test sentences a topic
may be absent from a split, and scoring its absence as F1 = 0 (or 1) would say
more about the split than about the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from train.modeling.outputs import HeadLabels, HeadProbabilities

# Every headline number: its key (as in metrics.json and the reports) and its label.
HEADLINE_METRICS = {
    "topic_micro_f1": "topic micro-F1",
    "topic_macro_f1": "topic macro-F1",
    "speaker_accuracy": "speaker accuracy",
    "speaker_macro_f1": "speaker macro-F1",
    "combined": "combined",
    "speaker_ece": "speaker ECE",
}


@dataclass(frozen=True)
class LabelScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class TopicScores:
    micro_f1: float
    macro_f1: float
    exact_match: float
    per_label: dict[str, LabelScores]


@dataclass(frozen=True)
class SpeakerScores:
    accuracy: float
    macro_f1: float
    per_label: dict[str, LabelScores]
    confusion_matrix: list[list[int]]  # rows gold, columns predicted, in the scheme's speaker order


@dataclass(frozen=True)
class Scores:
    """Every metric of one set of predictions; `to_dict` is its metrics.json form, `from_dict` reads it back."""
    combined: float
    topics: TopicScores
    speaker: SpeakerScores
    speaker_ece: float
    n_sentences: int

    def headline(self) -> dict[str, float]:
        """The headline numbers, flat, keyed as HEADLINE_METRICS."""
        return {"topic_micro_f1": self.topics.micro_f1, "topic_macro_f1": self.topics.macro_f1,
                "speaker_accuracy": self.speaker.accuracy, "speaker_macro_f1": self.speaker.macro_f1,
                "combined": self.combined, "speaker_ece": self.speaker_ece}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Scores:
        def per_label(labels: dict) -> dict[str, LabelScores]:
            return {name: LabelScores(**values) for name, values in labels.items()}
        topics, speaker = data["topics"], data["speaker"]
        return cls(
            combined=data["combined"], speaker_ece=data["speaker_ece"], n_sentences=data["n_sentences"],
            topics=TopicScores(topics["micro_f1"], topics["macro_f1"], topics["exact_match"],
                               per_label(topics["per_label"])),
            speaker=SpeakerScores(speaker["accuracy"], speaker["macro_f1"], per_label(speaker["per_label"]),
                                  speaker["confusion_matrix"]))


def _active(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.flatnonzero((gold.sum(axis=0) + pred.sum(axis=0)) > 0)


def _per_label(names, precision, recall, f1, support) -> dict[str, LabelScores]:
    return {name: LabelScores(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
            for i, name in enumerate(names)}


def topic_metrics(gold: np.ndarray, pred: np.ndarray, topics: list[str] | tuple[str, ...]) -> TopicScores:
    """Multi-label scores for 0/1 matrices of shape (sentences, topics)."""
    gold, pred = np.asarray(gold, dtype=int), np.asarray(pred, dtype=int)
    precision, recall, f1, support = precision_recall_fscore_support(gold, pred, average=None, zero_division=0)
    active = _active(gold, pred)
    return TopicScores(
        micro_f1=float(f1_score(gold, pred, average="micro", zero_division=0)),
        macro_f1=float(f1[active].mean()) if len(active) else 0.0,
        exact_match=float((gold == pred).all(axis=1).mean()) if len(gold) else 0.0,
        per_label=_per_label(topics, precision, recall, f1, support))


def speaker_metrics(gold: np.ndarray, pred: np.ndarray, speakers: list[str] | tuple[str, ...]) -> SpeakerScores:
    """Single-label scores for integer class ids."""
    gold, pred = np.asarray(gold, dtype=int), np.asarray(pred, dtype=int)
    labels = list(range(len(speakers)))
    precision, recall, f1, support = precision_recall_fscore_support(gold, pred, labels=labels, average=None,
                                                                     zero_division=0)
    active = sorted(set(gold.tolist()) | set(pred.tolist()))
    return SpeakerScores(
        accuracy=float(accuracy_score(gold, pred)) if len(gold) else 0.0,
        macro_f1=float(f1[active].mean()) if active else 0.0,
        per_label=_per_label(speakers, precision, recall, f1, support),
        confusion_matrix=confusion_matrix(gold, pred, labels=labels).tolist())


def combined_score(topic_macro_f1: float, speaker_macro_f1: float) -> float:
    """The model-selection score: both heads count equally."""
    return (topic_macro_f1 + speaker_macro_f1) / 2


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> float:
    """Weighted mean |accuracy - confidence| over equal-width confidence bins."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    if len(confidence) == 0:
        return 0.0
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    error = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            error += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(error)


def tune_thresholds(probabilities: np.ndarray, gold: np.ndarray, floor: float, default: float = 0.5) -> list[float]:
    """Per-topic threshold maximising F1 on validation, never below `floor`.

    A topic with no positive in validation keeps `default`: tuning it would push
    its threshold to the top of the grid and switch a rare label off for good.
    Ties go to the threshold nearest `default`.
    """
    probabilities, gold = np.asarray(probabilities), np.asarray(gold, dtype=int)
    grid = np.round(np.arange(floor, 0.951, 0.05), 4)
    thresholds = []
    for j in range(gold.shape[1]):
        if gold[:, j].sum() == 0:
            thresholds.append(default)
            continue
        scores = [f1_score(gold[:, j], probabilities[:, j] >= t, zero_division=0) for t in grid]
        best = max(scores)
        candidates = [t for t, s in zip(grid, scores) if s == best]
        thresholds.append(float(min(candidates, key=lambda t: abs(t - default))))
    return thresholds


def score_predictions(probabilities: HeadProbabilities, gold: HeadLabels, topics: list[str] | tuple[str, ...],
                      speakers: list[str] | tuple[str, ...], thresholds: list[float]) -> Scores:
    """Every headline metric for one set of predictions, topics decided at `thresholds`."""
    predicted = probabilities.decide(thresholds)
    topic = topic_metrics(gold.topics, predicted.topics, topics)
    speaker = speaker_metrics(gold.speaker, predicted.speaker, speakers)
    return Scores(
        combined=combined_score(topic.macro_f1, speaker.macro_f1), topics=topic, speaker=speaker,
        speaker_ece=expected_calibration_error(probabilities.speaker_confidence, predicted.speaker == gold.speaker),
        n_sentences=len(gold))
