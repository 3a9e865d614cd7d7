"""Quantification: QuaPy's methods on the tagger's outputs, the choice by measured error, and intervals that
cover a known truth under a prevalence shift and under error rates that differ between labelled text and coverage."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from train.bench.coverage import SyntheticTagger, simulated_overall, synthetic_calibration, synthetic_coverage
from train.coverage.calibration import SPEAKERS, TOPICS, choose, excess_error, reliability_warnings
from train.coverage.estimates import fit_corrections, full_rates, resampled_rates
from train.coverage.quantify import LINEAR, adjust, error_rates, fit_quantifier, quantify, speaker_sample
from train.coverage.tables import Layout, group_shares
from train.data.scheme import LabelScheme

SCHEME = LabelScheme(topics=("summit", "ukraine", "nato"), speakers=("putin", "biden", "russia_official", "none"))
LAYOUT = Layout(len(SCHEME.topics), len(SCHEME.speakers))
K, T = len(SCHEME.speakers), len(SCHEME.topics)


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def labelled_and_target(seed: int, n: int = 400, shares=(0.55, 0.25, 0.15, 0.05)):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, K, n)
    logits = rng.normal(size=(n, K))
    logits[np.arange(n), gold] += 1.2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    target_gold = rng.choice(K, 300, p=shares)
    target_logits = rng.normal(size=(300, K))
    target_logits[np.arange(300), target_gold] += 1.2
    target = np.exp(target_logits) / np.exp(target_logits).sum(axis=1, keepdims=True)
    return speaker_sample(probs, gold), speaker_sample(target), np.bincount(target_gold, minlength=K) / 300


@pytest.mark.parametrize("method", LINEAR)
def test_a_linear_method_from_a_sample_mean_equals_quapys_estimate(method):
    labelled, target, _ = labelled_and_target(0)
    by_quapy = quantify(fit_quantifier(method, labelled), target)
    from_means = adjust(method, error_rates(method, labelled), target.decisions.mean(0), target.probabilities.mean(0))
    np.testing.assert_allclose(from_means, by_quapy, atol=1e-12)


def test_adjusted_counts_recover_the_truth_under_a_prevalence_shift_where_raw_counts_do_not():
    labelled, target, truth = labelled_and_target(1, n=4000)
    raw = quantify(fit_quantifier("CC", labelled), target)
    adjusted = quantify(fit_quantifier("ACC", labelled), target)
    assert np.abs(raw - truth).max() > 0.1
    assert np.abs(adjusted - truth).max() < 0.06


def test_resampled_rates_with_every_sentence_once_are_quapys_rates():
    calib = synthetic_calibration(SyntheticTagger.drawn(K, T), seed=3)
    choice = choose([calib], SPEAKERS, SCHEME.speakers)
    for method in ("ACC", "PACC"):
        choice = type(choice)(SPEAKERS, method, calib, choice.scores, [])
        np.testing.assert_allclose(resampled_rates(choice, np.ones((2, calib.sentences)))[0], full_rates(choice))


def test_excess_error_is_what_sampling_does_not_explain():
    rng = np.random.default_rng(0)
    errors, excess = [], []
    for _ in range(200):
        gold = rng.integers(0, 2, 60)
        flip = rng.random(60) < 0.2  # a fifth of each class called the other: errors that cancel on average
        noisy = np.eye(2)[np.where(flip, 1 - gold, gold)]
        error = noisy.mean(0) - np.eye(2)[gold].mean(0)
        errors.append(np.abs(error).mean())
        excess.append(np.abs(excess_error(error, noisy, gold)).mean())
    assert np.mean(excess) < 0.6 * np.mean(errors)  # the raw errors would give 1.0
    biased = np.eye(2)[np.ones(60, dtype=int)]  # always says class 1
    error = biased.mean(0) - np.eye(2)[gold].mean(0)
    np.testing.assert_allclose(excess_error(error, biased, gold), error, atol=0.02)


@pytest.mark.parametrize("labelled", [False, True], ids=["held-out other text", "labelled sample of the coverage"])
def test_intervals_cover_the_known_truth_and_corrections_beat_raw_counts(labelled):
    covered, total, raw_error, corrected_error = 0, 0, [], []
    for seed in range(6):
        overall, truth = simulated_overall(SCHEME, seed, labelled)
        for key in ("speaker", "topic"):
            inside = (overall.low[key] - 1e-9 <= truth[key]) & (truth[key] <= overall.high[key] + 1e-9)
            covered, total = covered + inside.sum(), total + len(inside)
            raw_error.append(np.abs(overall.raw[key] - truth[key]).mean())
            corrected_error.append(np.abs(overall.estimate[key] - truth[key]).mean())
    assert covered / total >= 0.85, (covered, total)
    assert np.mean(corrected_error) < np.mean(raw_error), (np.mean(corrected_error), np.mean(raw_error))


def test_fewer_labelled_sentences_give_wider_intervals():
    tagger = SyntheticTagger.drawn(K, T, seed=4)
    features, _ = synthetic_coverage(tagger, LAYOUT, 200, np.full(K, 1 / K), np.full(T, 0.2), seed=4)
    widths = []
    for per_group in (15, 150):
        calib = synthetic_calibration(tagger, groups=6, sentences_per_group=per_group, shift=0.1, seed=4)
        overall = group_shares("all", features, LAYOUT, fit_corrections([calib], SCHEME, 200, 4), 200)
        widths.append(np.mean([(overall.high[k] - overall.low[k]).mean() for k in ("speaker", "topic")]))
    assert widths[0] > widths[1], widths


def test_the_adjustment_is_chosen_when_raw_counts_are_biased():
    tagger = SyntheticTagger(np.array([[0.6, 0.4, 0, 0], [0, 1, 0, 0], [0, 0.3, 0.7, 0], [0, 0.2, 0, 0.8]]),
                             np.full(T, 0.8), np.full(T, 0.05))
    calib = synthetic_calibration(tagger, groups=6, sentences_per_group=150, seed=5)
    choice = choose([calib], SPEAKERS, SCHEME.speakers)
    assert choice.method in ("ACC", "PACC"), [(s.method, round(s.held_out_error, 3)) for s in choice.scores]
    assert {s.method for s in choice.scores} == {"CC", "PCC", "ACC", "PACC", "EMQ"}
    assert choice.expected_error == choice.chosen.held_out_error


def test_warnings_say_when_not_to_trust_the_correction():
    tagger = SyntheticTagger(np.full((K, K), 1 / K), np.full(T, 0.3), np.full(T, 0.25))  # no better than chance
    calib = synthetic_calibration(tagger, groups=3, sentences_per_group=20, seed=6)
    speaker_notes = " ".join(reliability_warnings(calib, SPEAKERS, "ACC", SCHEME.speakers))
    assert "another kind of text" in speaker_notes and "rest on 60 labelled sentences" in speaker_notes
    topic_notes = " ".join(reliability_warnings(calib, TOPICS, "ACC", SCHEME.topics))
    assert "True- and false-positive rates closer than" in topic_notes
    same = synthetic_calibration(SyntheticTagger.drawn(K, T), groups=1, sentences_per_group=400, same_coverage=True)
    assert reliability_warnings(same, TOPICS, "CC", SCHEME.topics) == []
