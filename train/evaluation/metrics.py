"""Metrics as small pure functions on numpy arrays, built on scikit-learn.

The hub-hosted `evaluate` metrics cannot be loaded offline, and these are what
the model card, `metrics.json` and the reports all quote, so they live here once.

Macro averages run over the labels that occur in the gold labels or the
predictions of the data being scored: with a few dozen test sentences a topic
may be absent from a split, and scoring its absence as F1 = 0 (or 1) would say
more about the split than about the model.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from train.modeling.inference import apply_thresholds

# Every headline number: its key, its label and where it sits in `score_predictions`' result.
HEADLINE_METRICS = {
    "topic_micro_f1": ("topic micro-F1", ("topics", "micro_f1")),
    "topic_macro_f1": ("topic macro-F1", ("topics", "macro_f1")),
    "speaker_accuracy": ("speaker accuracy", ("speaker", "accuracy")),
    "speaker_macro_f1": ("speaker macro-F1", ("speaker", "macro_f1")),
    "combined": ("combined", ("combined",)),
    "speaker_ece": ("speaker ECE", ("speaker_ece",)),
}


def headline(scores: dict) -> dict[str, float]:
    """The headline numbers of a `score_predictions` result, flat."""
    flat = {}
    for key, (_, path) in HEADLINE_METRICS.items():
        value = scores
        for part in path:
            value = value[part]
        flat[key] = float(value)
    return flat


def _active(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.flatnonzero((gold.sum(axis=0) + pred.sum(axis=0)) > 0)


def topic_metrics(gold: np.ndarray, pred: np.ndarray, topics: list[str] | tuple[str, ...]) -> dict:
    """Multi-label scores for 0/1 matrices of shape (sentences, topics)."""
    gold, pred = np.asarray(gold, dtype=int), np.asarray(pred, dtype=int)
    precision, recall, f1, support = precision_recall_fscore_support(gold, pred, average=None, zero_division=0)
    active = _active(gold, pred)
    return {
        "micro_f1": float(f1_score(gold, pred, average="micro", zero_division=0)),
        "macro_f1": float(f1[active].mean()) if len(active) else 0.0,
        "exact_match": float((gold == pred).all(axis=1).mean()) if len(gold) else 0.0,
        "per_label": {
            t: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                "support": int(support[i])} for i, t in enumerate(topics)
        },
    }


def speaker_metrics(gold: np.ndarray, pred: np.ndarray, speakers: list[str] | tuple[str, ...]) -> dict:
    """Single-label scores for integer class ids."""
    gold, pred = np.asarray(gold, dtype=int), np.asarray(pred, dtype=int)
    labels = list(range(len(speakers)))
    precision, recall, f1, support = precision_recall_fscore_support(gold, pred, labels=labels, average=None,
                                                                     zero_division=0)
    active = sorted(set(gold.tolist()) | set(pred.tolist()))
    return {
        "accuracy": float(accuracy_score(gold, pred)) if len(gold) else 0.0,
        "macro_f1": float(f1[active].mean()) if active else 0.0,
        "per_label": {
            s: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                "support": int(support[i])} for i, s in enumerate(speakers)
        },
        "confusion_matrix": confusion_matrix(gold, pred, labels=labels).tolist(),
    }


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


def score_predictions(topic_probs: np.ndarray, topic_gold: np.ndarray, speaker_probs: np.ndarray,
                      speaker_gold: np.ndarray, topics: list[str], speakers: list[str],
                      thresholds: list[float]) -> dict:
    """Every headline metric for one set of predictions."""
    topic_pred = apply_thresholds(topic_probs, thresholds)
    speaker_pred = np.asarray(speaker_probs).argmax(axis=1)
    topic = topic_metrics(topic_gold, topic_pred, topics)
    speaker = speaker_metrics(speaker_gold, speaker_pred, speakers)
    return {
        "combined": combined_score(topic["macro_f1"], speaker["macro_f1"]),
        "topics": topic,
        "speaker": speaker,
        "speaker_ece": expected_calibration_error(np.asarray(speaker_probs).max(axis=1),
                                                  speaker_pred == np.asarray(speaker_gold)),
        "n_sentences": int(len(speaker_gold)),
    }
