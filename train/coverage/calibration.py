"""The labelled sentences a correction rests on, and the choice of method by its measured error under shift.

A quantifier is only as good as its error rates are for the coverage at hand, and the
rates move between kinds of text. So each method is scored where the shift is real:

* leave-event-out: the calibration sentences' event families (or, for a sample of the
  coverage itself, folds of its articles) are held out in turn; the method is fitted on
  the rest and scored on the held-out group at its natural shares;
* an artificial-prevalence protocol (QuaPy's UPP for the speakers, APP per topic): the
  held-out group is resampled at shares drawn across the whole simplex.

Per head the method with the least mean absolute error on the held-out groups is kept
(they shift the way real use does: a new event's own shares), the artificial protocol
shown beside it and breaking ties; the signed errors it made on the held-out groups,
beyond what their size explains, are what the page's intervals add for the method's
systematic error (a biased count, or rates carried to other text).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import quapy as qp
import quapy.functional as F
from quapy.data import LabelledCollection

from train.coverage.quantify import (
    LINEAR,
    METHODS,
    HeadSample,
    contributions,
    fit_quantifier,
    quantify,
    speaker_sample,
    topic_samples,
)
from train.errors import UserError
from train.modeling.outputs import HeadLabels, HeadProbabilities

SPEAKERS, TOPICS = "speaker", "topics"
ARTICLE_FOLDS = 5
PROTOCOL_SAMPLE = 100
UPP_REPEATS = 50
APP_PREVALENCES, APP_REPEATS = 11, 2
PROTOCOL_SEED = 20211207
# Below this many labelled sentences, or this many of a class, the error rates are themselves a guess.
FEW_SENTENCES = 200
FEW_OF_A_CLASS = 10
# True- and false-positive rates closer than this make an adjustment divide by almost nothing.
MIN_SEPARATION = 0.2


class CalibrationError(UserError):
    """Labelled sentences too few to measure any method's error."""


@dataclass(frozen=True)
class Calibration:
    """Labelled sentences with the tagger's predictions: what every correction of the page is fitted on."""
    origin: str  # where the sentences come from, in words
    same_coverage: bool  # labelled from the coverage itself, not another kind of text
    articles: np.ndarray  # (sentences,) article id: the resampling unit of the intervals
    folds: np.ndarray  # (sentences,) held-out group for choosing the method; "" = always used for fitting
    fold_kind: str  # "event" or "article"
    speaker: HeadSample
    topics: list[HeadSample]
    counts: dict[str, int] = field(default_factory=dict)  # sentences per source

    @property
    def sentences(self) -> int:
        return len(self.articles)

    def head(self, name: str) -> list[HeadSample]:
        return [self.speaker] if name == SPEAKERS else self.topics


def calibration(origin: str, same_coverage: bool, articles, folds, fold_kind: str, probabilities: HeadProbabilities,
                decided: HeadLabels, gold: HeadLabels, source: str) -> Calibration:
    """Labelled sentences' predictions (`decided`: the tagger's labels from `probabilities`) beside their gold."""
    articles = np.asarray(articles, dtype=str)
    return Calibration(origin, same_coverage, articles, np.asarray(folds, dtype=str), fold_kind,
                       speaker_sample(probabilities.speaker, gold.speaker),
                       topic_samples(probabilities.topics, decided.topics, gold.topics), {source: len(articles)})


def article_folds(articles: np.ndarray, n_folds: int = ARTICLE_FOLDS, seed: int = PROTOCOL_SEED) -> np.ndarray:
    """A fold name per sentence, whole articles to a fold, folds of about equal size."""
    unique = np.unique(articles)
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {unique[i]: f"articles {rank % min(n_folds, len(unique)) + 1}" for rank, i in enumerate(order)}
    return np.array([fold_of[a] for a in articles])


def pooled(first: Calibration, second: Calibration) -> Calibration:
    """`first` with `second` added for fitting only: methods are still scored on `first`'s folds."""
    def join(a: HeadSample, b: HeadSample) -> HeadSample:
        return HeadSample(np.vstack([a.decisions, b.decisions]), np.vstack([a.probabilities, b.probabilities]),
                          np.concatenate([a.gold, b.gold]))
    return Calibration(
        f"{first.origin}, pooled with {second.origin}", False,
        np.concatenate([first.articles, second.articles]),
        np.concatenate([first.folds, np.full(second.sentences, "")]), first.fold_kind,
        join(first.speaker, second.speaker), [join(a, b) for a, b in zip(first.topics, second.topics)],
        {**first.counts, **second.counts})


@dataclass(frozen=True)
class MethodScore:
    """One method's measured error on one head: mean absolute error of the shares, in share units (0-1)."""
    method: str
    held_out_error: float  # at the held-out groups' own shares (leave-event-out, or article folds)
    artificial_error: float  # at artificial shares (UPP / APP)
    group_errors: np.ndarray  # (groups, labels) signed error at each held-out group's own shares
    excess_errors: np.ndarray  # the same, less what the group's own size explains (see `excess_error`)

    @property
    def error(self) -> float:
        """What the method is chosen by: the error at held-out groups' own shares, the shift real use meets (an
        unseen event's shares); the artificial shares, pushed to the simplex's corners, break ties."""
        return self.held_out_error + 1e-3 * self.artificial_error


@dataclass(frozen=True)
class HeadChoice:
    """The method kept for one head, the calibration it is fitted on, and how far to trust it."""
    head: str
    method: str
    calibration: Calibration
    scores: list[MethodScore]
    warnings: list[str]

    @property
    def chosen(self) -> MethodScore:
        return next(s for s in self.scores if s.method == self.method)

    @property
    def expected_error(self) -> float:
        """Mean absolute error of a share on a held-out group: what the page quotes as the error to expect."""
        return self.chosen.held_out_error

    @property
    def systematic_errors(self) -> np.ndarray:
        """(groups, labels) signed errors beyond sampling that the intervals add: the method's bias on held-out
        groups, which grows when the rates come from other text than the group's."""
        return self.chosen.excess_errors


def _positive_share(shares: np.ndarray, binary: bool) -> np.ndarray:
    return shares[..., 1:] if binary else shares


def artificial_prevalences(gold: np.ndarray, n_classes: int, binary: bool) -> np.ndarray:
    """Shares to resample a held-out group at: APP's grid for a binary label, UPP's uniform draws over the
    simplex for the speakers; only classes the group has can be drawn, so absent ones stay at zero."""
    present = np.unique(gold)
    if len(present) < 2:
        return np.empty((0, n_classes))
    if binary:
        positive = np.repeat(F.prevalence_linspace(APP_PREVALENCES), APP_REPEATS)
        return np.stack([1 - positive, positive], axis=1)
    with qp.util.temp_seed(PROTOCOL_SEED):
        draws = F.uniform_prevalence_sampling(len(present), UPP_REPEATS)
    shares = np.zeros((len(draws), n_classes))
    shares[:, present] = draws
    return shares


def excess_error(error: np.ndarray, contributions: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """The part of a held-out group's error that its size does not explain.

    The error is the mean over the group's n sentences of (contribution − truth), so
    sampling alone gives it a variance of var/n; on a group of 16 sentences that is
    several points. What is left, sign kept, sqrt(max(0, error² − var/n)), is the
    systematic error of carrying the rates to other text, which the intervals add.
    """
    differences = contributions - np.eye(contributions.shape[1])[gold]
    noise = differences.var(axis=0, ddof=1) / len(gold) if len(gold) > 1 else np.zeros(contributions.shape[1])
    return np.sign(error) * np.sqrt(np.clip(error ** 2 - noise, 0, None))


def score_methods(calib: Calibration, head: str, methods=METHODS) -> list[MethodScore]:
    """Every method's error on `head` under both protocols, each held-out group in turn."""
    binary = head == TOPICS
    # A group can be held out only when something is left to fit on.
    groups = sorted(g for g in set(calib.folds) if g and (calib.folds != g).any())
    held_out = {m: [] for m in methods}  # per group: (labels,) signed errors at its own shares
    excess = {m: [] for m in methods}
    artificial = {m: [] for m in methods}  # absolute errors at artificial shares
    for number, group in enumerate(groups):
        test_rows, fit_rows = calib.folds == group, calib.folds != group
        per_label = {m: [] for m in methods}
        per_label_excess = {m: [] for m in methods}
        for sample in calib.head(head):
            fit_part, test_part = sample.take(fit_rows), sample.take(test_rows)
            collection = LabelledCollection(test_part.instances(), test_part.gold, classes=np.arange(sample.n_classes))
            size = min(PROTOCOL_SAMPLE, len(test_part.gold))
            shifted = [collection.sampling(size, *shares, random_state=PROTOCOL_SEED + number * 1000 + i)
                       for i, shares in enumerate(artificial_prevalences(test_part.gold, sample.n_classes, binary))]
            for method in methods:
                quantifier = fit_quantifier(method, fit_part)
                error = quantify(quantifier, test_part) - test_part.prevalence()
                per_label[method].append(_positive_share(error, binary))
                if method in LINEAR:
                    shares = contributions(method, quantifier, test_part)
                    error = excess_error(error, shares, test_part.gold)
                per_label_excess[method].append(_positive_share(error, binary))
                artificial[method] += [float(np.abs(_positive_share(
                    np.asarray(quantifier.predict(s.X)) - s.prevalence(), binary)).mean()) for s in shifted]
        for method in methods:
            held_out[method].append(np.concatenate(per_label[method]))
            excess[method].append(np.concatenate(per_label_excess[method]))
    if not groups:
        return []
    return [MethodScore(m, float(np.mean(np.abs(held_out[m]))), float(np.mean(artificial[m])), np.array(held_out[m]),
                        np.array(excess[m])) for m in methods]


def reliability_warnings(calib: Calibration, head: str, method: str, labels: tuple[str, ...]) -> list[str]:
    """Plain reasons not to trust the corrected shares far."""
    notes = []
    if not calib.same_coverage:
        notes.append(f"The error rates come from {calib.origin}, another kind of text than this coverage; the "
                     "intervals add the errors measured under event shift, but a larger shift is possible. Label a "
                     "random sample of this coverage (`make suggest ARGS=--strategy random`) and pass LABELLED=.")
    if calib.sentences < FEW_SENTENCES:
        notes.append(f"The error rates rest on {calib.sentences} labelled sentences (fewer than {FEW_SENTENCES}).")
    samples = calib.head(head)
    if head == SPEAKERS:
        support = np.bincount(samples[0].gold, minlength=len(labels))
        rare = [label for label, n in zip(labels, support) if n < FEW_OF_A_CLASS]
        if rare:
            notes.append(f"Fewer than {FEW_OF_A_CLASS} labelled sentences of {', '.join(rare)}: their error rates "
                         "are rough.")
    elif method in ("ACC", "PACC"):
        close = []
        for label, sample in zip(labels, samples):
            outputs = sample.probabilities[:, 1] if method == "PACC" else sample.decisions[:, 1]
            gold = sample.gold.astype(bool)
            if gold.any() and (~gold).any() and outputs[gold].mean() - outputs[~gold].mean() < MIN_SEPARATION:
                close.append(label)
        if close:
            notes.append(f"True- and false-positive rates closer than {MIN_SEPARATION} for {', '.join(close)}: the "
                         "adjustment divides by almost nothing there, so those shares swing widely.")
    return notes


def choose(candidates: list[Calibration], head: str, labels: tuple[str, ...]) -> HeadChoice:
    """The (calibration, method) pair with the least measured error on `head`, among the methods the page can
    resample (every method is scored and shown)."""
    scored = [(calib, scores) for calib in candidates if (scores := score_methods(calib, head))]
    if not scored:
        raise CalibrationError(f"{candidates[0].origin}: the error rates need labelled sentences from at least two "
                               "articles (one is held out while the other fits); label sentences of more articles")

    def best(scores: list[MethodScore]) -> MethodScore:
        return min((s for s in scores if s.method in LINEAR), key=lambda s: s.error)
    calib, scores = min(scored, key=lambda pair: best(pair[1]).error)
    method = best(scores).method
    return HeadChoice(head, method, calib, scores, reliability_warnings(calib, head, method, labels))
