"""Coverage shares corrected for the tagger's measured errors, with bootstrap intervals over articles.

Raw counts of a classifier's labels are biased: if the tagger calls 20% of `none`
sentences `putin`, every outlet's Putin share is inflated by the same error. Two
standard corrections (Forman 2008, "Quantifying counts and costs via classification"):

* adjusted classify-and-count: the predicted distribution q is the true one p seen
  through the confusion rates R measured on held-out data (q = p R), so p is
  recovered by solving that system;
* probability mean: the mean predicted probability, unbiased when the model is
  calibrated on this kind of text.

Every function here is pure numpy; arrays may carry leading dimensions (resamples,
groups), so one call estimates every bootstrap resample at once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from train.evaluation.metrics import expected_calibration_error
from train.evaluation.stats import resample_weights

ADJUSTED = "adjusted classify-and-count"
PROBABILITY_MEAN = "mean predicted probability"
# Calibrated enough to trust the probabilities as shares: a held-out expected calibration error this small.
CALIBRATED_ECE = 0.05
# A topic whose held-out true- and false-positive rates are closer than this cannot be corrected: dividing by
# their difference would amplify noise without bound, so its raw share is reported instead.
MIN_SEPARATION = 0.2
BOOTSTRAP_CHUNK = 100


@dataclass(frozen=True)
class HeldOutErrors:
    """The tagger's errors measured on sentences it was not trained on."""
    source: str
    sentences: int
    speaker_confusion: np.ndarray  # (speakers, speakers) counts, rows gold, columns predicted
    topic_true_positive_rate: np.ndarray  # (topics,)
    topic_false_positive_rate: np.ndarray  # (topics,)
    speaker_ece: float
    topic_ece: float

    @property
    def speaker_method(self) -> str:
        return PROBABILITY_MEAN if self.speaker_ece <= CALIBRATED_ECE else ADJUSTED

    @property
    def topic_method(self) -> str:
        return PROBABILITY_MEAN if self.topic_ece <= CALIBRATED_ECE else ADJUSTED

    @property
    def uncorrectable_topics(self) -> np.ndarray:
        """Boolean mask of topics whose adjusted share falls back to the raw share."""
        return (self.topic_true_positive_rate - self.topic_false_positive_rate) < MIN_SEPARATION


def held_out_errors(source: str, topic_probs: np.ndarray, topic_pred: np.ndarray, topic_gold: np.ndarray,
                    speaker_probs: np.ndarray, speaker_gold: np.ndarray) -> HeldOutErrors:
    """Confusion and rates from held-out predictions and gold labels."""
    topic_pred, topic_gold = np.asarray(topic_pred, dtype=bool), np.asarray(topic_gold, dtype=bool)
    speaker_pred = np.asarray(speaker_probs).argmax(axis=1)
    n_speakers = speaker_probs.shape[1]
    confusion = np.zeros((n_speakers, n_speakers))
    np.add.at(confusion, (np.asarray(speaker_gold, dtype=int), speaker_pred), 1)
    positives, negatives = topic_gold.sum(axis=0), (~topic_gold).sum(axis=0)
    true_positive_rate = np.divide((topic_pred & topic_gold).sum(axis=0), positives,
                                   out=np.zeros(topic_gold.shape[1]), where=positives > 0)
    false_positive_rate = np.divide((topic_pred & ~topic_gold).sum(axis=0), negatives,
                                    out=np.zeros(topic_gold.shape[1]), where=negatives > 0)
    return HeldOutErrors(
        source=source, sentences=len(speaker_gold), speaker_confusion=confusion,
        topic_true_positive_rate=true_positive_rate, topic_false_positive_rate=false_positive_rate,
        speaker_ece=expected_calibration_error(speaker_probs.max(axis=1), speaker_pred == speaker_gold),
        topic_ece=expected_calibration_error(np.ravel(topic_probs), np.ravel(topic_gold)))


def confusion_rates(confusion: np.ndarray) -> np.ndarray:
    """P(predicted j | true i). A class absent from the held-out data is assumed to be predicted correctly."""
    confusion = np.asarray(confusion, dtype=float)
    support = confusion.sum(axis=1, keepdims=True)
    return np.where(support > 0, confusion / np.where(support > 0, support, 1), np.eye(len(confusion)))


def adjusted_class_shares(observed: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """True class shares p from observed predicted shares q = p @ rates (last axis: classes).

    Least squares through the pseudo-inverse, so a singular confusion still gives an
    answer; shares below zero (sampling noise) are clipped and the rest renormalised.
    """
    observed = np.asarray(observed, dtype=float)
    shares = np.clip(observed @ np.linalg.pinv(rates), 0, None)
    total = shares.sum(axis=-1, keepdims=True)
    return np.divide(shares, total, out=observed.copy(), where=total > 0)


def adjusted_binary_shares(observed: np.ndarray, true_positive_rate: np.ndarray,
                           false_positive_rate: np.ndarray) -> np.ndarray:
    """Per-label true shares from observed positive shares: (q - fpr) / (tpr - fpr), within [0, 1].

    Labels whose rates are closer than MIN_SEPARATION keep the observed share.
    """
    observed = np.asarray(observed, dtype=float)
    separation = true_positive_rate - false_positive_rate
    usable = separation >= MIN_SEPARATION
    adjusted = (observed - false_positive_rate) / np.where(usable, separation, 1)
    return np.where(usable, np.clip(adjusted, 0, 1), observed)


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
