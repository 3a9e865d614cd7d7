"""Prevalence estimation (quantification) on the tagger's pre-computed predictions, with QuaPy.

Raw counts of a classifier's labels are biased: if the tagger calls 20% of `none`
sentences `putin`, every outlet's Putin share is inflated by the same error. QuaPy's
aggregative quantifiers correct for that from labelled sentences the tagger did not
train on (Forman 2008; Saerens et al. 2002; Bunse 2022):

    CC    classify and count: the share of predicted labels
    PCC   probabilistic classify and count: the mean predicted probability
    ACC   adjusted CC: solves q = M p, M[i, j] = P(predicted i | true j) measured on labelled sentences
    PACC  the same with mean probabilities in place of counts
    EMQ   expectation maximisation of the priors (SLD), starting from the labelled sentences' shares

The speaker head is one multi-class problem; each topic is its own binary problem
(present or not), since a sentence may carry several.

QuaPy fits and applies each quantifier; `Predicted` hands it the tagger's outputs
as if they were a classifier's. The coverage page needs thousands of estimates per
group (bootstrap resamples x labels), so the four linear methods are also applied
in one vectorised step from a sample's mean prediction (`adjust`), which equals
QuaPy's result (tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from quapy.method.aggregative import ACC, CC, EMQ, PACC, PCC
from sklearn.base import BaseEstimator, ClassifierMixin

METHODS = ("CC", "PCC", "ACC", "PACC", "EMQ")
SOFT = {"PCC", "PACC", "EMQ"}  # fed probabilities; CC and ACC are fed the tagger's decisions
ADJUSTING = {"ACC", "PACC"}
# The page resamples thousands of estimates per group, which these do from a sample's mean output alone; EMQ
# needs every sentence's probabilities in every resample, so it is scored and shown but not used there.
LINEAR = ("CC", "PCC", "ACC", "PACC")
DESCRIPTIONS = {
    "CC": "share of the tagger's labels (raw count)",
    "PCC": "mean predicted probability",
    "ACC": "labels adjusted by the error rates (adjusted classify-and-count)",
    "PACC": "probabilities adjusted by the error rates (probabilistic adjusted classify-and-count)",
    "EMQ": "priors re-estimated by expectation maximisation (SLD)",
}
# QuaPy's exact solver: np.linalg.solve, falling back to the unadjusted shares when the rates are singular.
SOLVER, ADJUSTMENT, NORM = "exact-cc", "inversion", "clip"


class Predicted(ClassifierMixin, BaseEstimator):
    """A 'classifier' that returns predictions already made: row = [decision one-hot | probabilities].

    QuaPy's aggregative quantifiers call predict (CC, ACC) or predict_proba (PCC,
    PACC, EMQ) on the instances; here the instances are the tagger's outputs.
    """

    def __init__(self, n_classes: int = 2):
        self.n_classes = n_classes

    def fit(self, X, y):
        self.classes_ = np.arange(self.n_classes)
        return self

    def predict(self, X):
        return np.asarray(X)[:, :self.n_classes].argmax(axis=1)

    def predict_proba(self, X):
        return np.asarray(X)[:, self.n_classes:]


@dataclass(frozen=True)
class HeadSample:
    """One head's predictions on a set of sentences, in the form quantification needs."""
    decisions: np.ndarray  # (sentences, classes) one-hot: what the tagger output
    probabilities: np.ndarray  # (sentences, classes)
    gold: np.ndarray | None = None  # (sentences,) class ids, for labelled sentences

    @property
    def n_classes(self) -> int:
        return self.probabilities.shape[1]

    def instances(self) -> np.ndarray:
        return np.hstack([self.decisions, self.probabilities])

    def take(self, rows: np.ndarray) -> HeadSample:
        return HeadSample(self.decisions[rows], self.probabilities[rows],
                          None if self.gold is None else self.gold[rows])

    def prevalence(self) -> np.ndarray:
        return np.bincount(self.gold, minlength=self.n_classes) / len(self.gold)


def speaker_sample(probabilities: np.ndarray, gold: np.ndarray | None = None) -> HeadSample:
    probabilities = np.asarray(probabilities, dtype=float)
    decisions = np.eye(probabilities.shape[1])[probabilities.argmax(axis=1)]
    return HeadSample(decisions, probabilities, None if gold is None else np.asarray(gold, dtype=int))


def topic_samples(probabilities: np.ndarray, decisions: np.ndarray, gold: np.ndarray | None = None) -> list[HeadSample]:
    """One binary sample (absent, present) per topic; the decision is the tagger's thresholded one."""
    probabilities, decisions = np.asarray(probabilities, dtype=float), np.asarray(decisions, dtype=int)
    return [HeadSample(np.eye(2)[decisions[:, t]], np.stack([1 - probabilities[:, t], probabilities[:, t]], axis=1),
                       None if gold is None else np.asarray(gold, dtype=int)[:, t])
            for t in range(probabilities.shape[1])]


def fit_quantifier(method: str, labelled: HeadSample):
    """A QuaPy quantifier of `method` fitted on labelled sentences' predictions."""
    classifier = Predicted(labelled.n_classes).fit(None, None)
    quantifier = {
        "CC": lambda: CC(classifier, fit_classifier=False),
        "PCC": lambda: PCC(classifier, fit_classifier=False),
        "ACC": lambda: ACC(classifier, fit_classifier=False, val_split=None, solver=SOLVER, method=ADJUSTMENT,
                           norm=NORM),
        "PACC": lambda: PACC(classifier, fit_classifier=False, val_split=None, solver=SOLVER, method=ADJUSTMENT,
                             norm=NORM),
        "EMQ": lambda: EMQ(classifier, fit_classifier=False),
    }[method]()
    return quantifier.fit(labelled.instances(), labelled.gold)


def quantify(quantifier, sample: HeadSample) -> np.ndarray:
    """Estimated class shares of a sample, by QuaPy."""
    return np.asarray(quantifier.predict(sample.instances()), dtype=float)


def error_rates(method: str, labelled: HeadSample) -> np.ndarray:
    """M[i, j] = P(predicted i | true j) as QuaPy's ACC (decisions) or PACC (probabilities) measures it;
    the identity for CC and PCC, which do not adjust."""
    if method not in ADJUSTING:
        return np.eye(labelled.n_classes)
    outputs = labelled.probabilities if method == "PACC" else labelled.decisions
    return PACC.getPteCondEstim(np.arange(labelled.n_classes), labelled.gold, outputs)


def adjust(method: str, rates: np.ndarray, mean_decisions: np.ndarray, mean_probabilities: np.ndarray) -> np.ndarray:
    """A linear method's shares from a sample's mean outputs, for many samples at once.

    rates: (..., classes, classes) from `error_rates`; means: (..., classes). Solves
    q = M p per sample as QuaPy's exact solver does (unadjusted where M is singular),
    then clips to the simplex as its "clip" normalisation does.
    """
    observed = np.asarray(mean_probabilities if method in SOFT else mean_decisions, dtype=float)
    if method not in ADJUSTING:
        return observed
    rates = np.broadcast_to(rates, observed.shape + observed.shape[-1:])
    singular = np.abs(np.linalg.det(rates)) < 1e-12
    safe = np.where(singular[..., None, None], np.eye(observed.shape[-1]), rates)
    solved = np.linalg.solve(safe, observed[..., None])[..., 0]
    solved = np.where(singular[..., None], observed, solved)
    clipped = np.clip(solved, 0, None)
    total = clipped.sum(axis=-1, keepdims=True)
    uniform = np.full_like(clipped, 1 / clipped.shape[-1])
    return np.where(total > 0, clipped / np.where(total > 0, total, 1), uniform)


def contributions(method: str, quantifier, sample: HeadSample) -> np.ndarray:
    """Each sentence's share of a fitted linear method's estimate before clipping: the estimate is their mean."""
    outputs = sample.probabilities if method in SOFT else sample.decisions
    if method not in ADJUSTING:
        return outputs
    rates = quantifier.Pte_cond_estim_  # the rates QuaPy fitted, not measured again
    if abs(np.linalg.det(rates)) < 1e-12:
        return outputs
    return np.linalg.solve(rates, outputs.T).T
