"""Corrected shares with intervals that cover three sources of error.

Each group's shares come from the method each head was given (`calibration.choose`),
fitted on its labelled sentences. A 95% interval is the spread over bootstrap
resamples of, at once:

1. the coverage's articles (sampling: another week's articles would differ);
2. the labelled sentences the error rates come from, by article (so few labelled
   sentences give wide intervals);
3. the method's systematic error: one of the signed errors it made on a held-out
   event (or group of articles) beyond what that group's size explains, drawn at
   random and added to the estimate. It is near zero for a correction whose rates fit
   the text, and large for a biased count or rates carried to other text.

Every function is numpy over leading dimensions (resamples, groups, topics), so one
call estimates every resample at once; 100,000 articles take seconds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from train.coverage.calibration import SPEAKERS, TOPICS, Calibration, HeadChoice, choose
from train.coverage.quantify import ADJUSTING, adjust, error_rates
from train.data.scheme import LabelScheme
from train.evaluation.stats import resample_weights

BOOTSTRAP_CHUNK = 100
# Offsets from the coverage's seed, so the labelled sentences' resamples and the shift draws are their own streams.
CALIBRATION_STREAM, SHIFT_STREAM = 10_000, 20_000


def resampled_rates(choice: HeadChoice, weights: np.ndarray) -> np.ndarray:
    """Error rates M[i, j] = P(output i | true j) of each label sample under sentence weights (resamples, n).

    Returns (resamples, labels, classes, classes); a class absent from a resample keeps
    the identity column, as QuaPy does when a class has no labelled sentence.
    """
    rates = []
    for sample in choice.calibration.head(choice.head):
        k = sample.n_classes
        if choice.method not in ADJUSTING:
            rates.append(np.broadcast_to(np.eye(k), (len(weights), k, k)))
            continue
        outputs = sample.probabilities if choice.method == "PACC" else sample.decisions
        gold = np.eye(k)[sample.gold]
        joint = weights @ (outputs[:, :, None] * gold[:, None, :]).reshape(len(gold), k * k)
        support = weights @ gold
        joint = joint.reshape(len(weights), k, k)
        rates.append(np.where(support[:, None, :] > 0, joint / np.where(support > 0, support, 1)[:, None, :],
                              np.eye(k)))
    return np.stack(rates, axis=1)


def full_rates(choice: HeadChoice) -> np.ndarray:
    """(labels, classes, classes): the rates on all labelled sentences, by QuaPy."""
    return np.stack([error_rates(choice.method, sample) for sample in choice.calibration.head(choice.head)])


@dataclass(frozen=True)
class Correction:
    """One head's chosen method with everything its estimates and intervals need, resampled once for all groups."""
    choice: HeadChoice
    rates: np.ndarray  # (labels, classes, classes) on every labelled sentence
    resampled: np.ndarray  # (resamples, labels, classes, classes)
    shift: np.ndarray | None  # (resamples, labels or classes) systematic errors drawn per resample

    @property
    def method(self) -> str:
        return self.choice.method


@dataclass(frozen=True)
class Corrections:
    """Both heads' corrections: what every group's estimate and interval is computed with."""
    speaker: Correction
    topics: Correction


def correction(choice: HeadChoice, n_resamples: int, seed: int) -> Correction:
    calib = choice.calibration
    articles, index = np.unique(calib.articles, return_inverse=True)
    weights = resample_weights(len(articles), n_resamples, seed + CALIBRATION_STREAM)[:, index]
    shift = None
    if len(choice.systematic_errors):
        draws = np.random.default_rng(seed + SHIFT_STREAM).integers(len(choice.systematic_errors), size=n_resamples)
        shift = choice.systematic_errors[draws]
    return Correction(choice, full_rates(choice), resampled_rates(choice, weights), shift)


def fit_corrections(candidates: list[Calibration], scheme: LabelScheme, n_resamples: int, seed: int) -> Corrections:
    """Each head's method and calibration chosen by measured error, resampled for the intervals."""
    return Corrections(correction(choose(candidates, SPEAKERS, scheme.speakers), n_resamples, seed),
                       correction(choose(candidates, TOPICS, scheme.topics), n_resamples, seed))


def speaker_shares(correction: Correction, mean_decisions: np.ndarray, mean_probabilities: np.ndarray,
                   rates: np.ndarray) -> np.ndarray:
    """Class shares (..., speakers); rates (speakers, speakers) or with the same leading dimensions."""
    return adjust(correction.method, rates, mean_decisions, mean_probabilities)


def topic_shares(correction: Correction, mean_decisions: np.ndarray, mean_probabilities: np.ndarray,
                 rates: np.ndarray) -> np.ndarray:
    """Positive shares (..., topics) from each topic's binary problem; rates (..., topics, 2, 2)."""
    def binary(positive):
        return np.stack([1 - positive, positive], axis=-1)
    return adjust(correction.method, rates, binary(mean_decisions), binary(mean_probabilities))[..., 1]


def with_shift(samples: np.ndarray, shift: np.ndarray | None) -> np.ndarray:
    """Resampled shares (resamples, ..., labels) less each resample's drawn systematic error, within [0, 1]:
    an estimate is the truth plus its error, so the truth it stands for is the estimate minus an error."""
    if shift is None:
        return samples
    shaped = shift.reshape(shift.shape[:1] + (1,) * (samples.ndim - 2) + shift.shape[1:])
    return np.clip(samples - shaped, 0, 1)


def resampled_sums(features: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Column sums of `features` (articles x features) over bootstrap resamples of the articles.

    Resamples are drawn in chunks so the weight matrix stays small at 100,000 articles.
    """
    features = np.asarray(features, dtype=np.float32)
    sums = []
    for chunk, start in enumerate(range(0, n_resamples, BOOTSTRAP_CHUNK)):
        size = min(BOOTSTRAP_CHUNK, n_resamples - start)
        weights = resample_weights(len(features), size, seed + chunk).astype(np.float32)
        sums.append(weights @ features)
    return np.concatenate(sums).astype(float)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Low and high percentile bounds over the first axis (the resamples); NaN where every resample is NaN."""
    tail = (1 - level) / 2 * 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a share with no sentences under it stays NaN
        low, high = np.nanpercentile(samples, [tail, 100 - tail], axis=0)
    return low, high
