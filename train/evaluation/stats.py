"""Bootstrap confidence intervals and paired bootstrap tests over sentences.

Drawing n sentences with replacement is the same as weighting each sentence by
how many times it was drawn. Every statistic here is therefore a function of a
weight matrix of shape (resamples, sentences) returning one value per row, and
all resamples are scored at once with matrix products; a row of ones is the
original data. Using the same weight matrix for two systems is what makes a
bootstrap test paired.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from train.modeling.outputs import HeadLabels, HeadProbabilities

N_RESAMPLES = 1000
SEED = 20211207
N_BINS = 10

Statistic = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Interval:
    point: float
    low: float
    high: float


@dataclass(frozen=True)
class PairedTest:
    difference: float  # statistic_a - statistic_b on the original data
    low: float
    high: float
    p_value: float


def resample_weights(n: int, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> np.ndarray:
    """How often each of n sentences is drawn, for n_resamples draws of n with replacement."""
    draws = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    offsets = (np.arange(n_resamples) * n)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=n_resamples * n).reshape(n_resamples, n).astype(float)


def _original(weights: np.ndarray) -> np.ndarray:
    return np.ones((1, weights.shape[1]))


def bootstrap_interval(statistic: Statistic, weights: np.ndarray, level: float = 0.95) -> Interval:
    """Percentile interval of a statistic over the resamples in `weights`."""
    samples = statistic(weights)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(float(statistic(_original(weights))[0]), float(low), float(high))


def paired_bootstrap(statistic_a: Statistic, statistic_b: Statistic, weights: np.ndarray,
                     level: float = 0.95) -> PairedTest:
    """Is a - b different from zero? Both systems are scored on the same resamples.

    Two-sided p-value: twice the share of resamples in which the difference does
    not keep the sign observed on the original data (it is zero or flips), capped
    at 1; 1 when there is no observed difference. p < 0.05 then agrees with the
    95% percentile interval of the difference excluding zero.
    """
    observed = float(statistic_a(_original(weights))[0] - statistic_b(_original(weights))[0])
    differences = statistic_a(weights) - statistic_b(weights)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    p_value = 1.0 if observed == 0 else min(1.0, 2 * float(np.mean(np.sign(differences) != np.sign(observed))))
    return PairedTest(observed, float(low), float(high), p_value)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator, dtype=float), where=denominator > 0)


def _macro_over_active(f1: np.ndarray, active: np.ndarray) -> np.ndarray:
    counts = active.sum(axis=1)
    return np.divide((f1 * active).sum(axis=1), counts, out=np.zeros(len(f1)), where=counts > 0)


def headline_statistics(gold: HeadLabels, predicted: HeadLabels,
                        probabilities: HeadProbabilities) -> dict[str, Statistic]:
    """The headline metrics of train.evaluation.metrics.score_predictions as weighted statistics.

    Same definitions: macro averages over labels present in gold or predictions,
    F1 = 0 where undefined, ECE over equal-width confidence bins.
    """
    topic_gold, topic_pred = gold.topics.astype(float), predicted.topics.astype(float)
    n_speakers = probabilities.speaker.shape[1]
    gold_onehot, pred_onehot = gold.speaker_onehot(n_speakers), predicted.speaker_onehot(n_speakers)
    correct = (predicted.speaker == gold.speaker).astype(float)
    confidence = probabilities.speaker_confidence.astype(float)
    bins = np.eye(N_BINS)[np.minimum((confidence * N_BINS).astype(int), N_BINS - 1)]

    def topic_micro_f1(w: np.ndarray) -> np.ndarray:
        tp = w @ (topic_gold * topic_pred).sum(axis=1)
        fp = w @ ((1 - topic_gold) * topic_pred).sum(axis=1)
        fn = w @ (topic_gold * (1 - topic_pred)).sum(axis=1)
        return _f1(tp, fp, fn)

    def macro_f1(gold: np.ndarray, pred: np.ndarray) -> Statistic:
        def statistic(w: np.ndarray) -> np.ndarray:
            f1 = _f1(w @ (gold * pred), w @ ((1 - gold) * pred), w @ (gold * (1 - pred)))
            return _macro_over_active(f1, (w @ (gold + pred)) > 0)
        return statistic

    topic_macro_f1 = macro_f1(topic_gold, topic_pred)
    speaker_macro_f1 = macro_f1(gold_onehot, pred_onehot)
    return {
        "topic_micro_f1": topic_micro_f1,
        "topic_macro_f1": topic_macro_f1,
        "speaker_accuracy": lambda w: (w @ correct) / w.sum(axis=1),
        "speaker_macro_f1": speaker_macro_f1,
        "combined": lambda w: (topic_macro_f1(w) + speaker_macro_f1(w)) / 2,
        "speaker_ece": lambda w: np.abs(w @ (bins * correct[:, None]) - w @ (bins * confidence[:, None])).sum(axis=1)
        / w.sum(axis=1),
    }
