"""Metrics against hand-computed cases, and the bootstrap built on them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from train.evaluation.metrics import (
    LabelScores,
    Scores,
    expected_calibration_error,
    score_predictions,
    speaker_metrics,
    topic_metrics,
)
from train.evaluation.stats import bootstrap_interval, headline_statistics, paired_bootstrap, resample_weights
from train.modeling.outputs import HeadLabels, HeadProbabilities

TOPICS = ["a", "b", "c"]
SPEAKERS = ["w", "x", "y", "z"]


def test_topic_metrics_hand_computed():
    gold = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 1, 0]])
    pred = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0]])
    result = topic_metrics(gold, pred, TOPICS)
    # a: tp 1, fp 1, fn 1; b: tp 1, fn 1; c: never gold nor predicted, left out of the macro average.
    assert result.per_label["a"] == LabelScores(precision=0.5, recall=0.5, f1=0.5, support=2)
    b = result.per_label["b"]
    assert (b.precision, b.recall, b.f1, b.support) == pytest.approx((1.0, 0.5, 2 / 3, 2))
    assert result.per_label["c"].support == 0
    assert result.micro_f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))
    assert result.macro_f1 == pytest.approx((0.5 + 2 / 3) / 2)
    assert result.exact_match == 0.5


def test_speaker_metrics_hand_computed():
    gold = np.array([0, 0, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0])
    result = speaker_metrics(gold, pred, SPEAKERS)
    assert result.confusion_matrix == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert result.accuracy == pytest.approx(0.6)
    # w: tp 1, fp 1, fn 1 -> 0.5; x: tp 2, fp 1 -> 0.8; y: 0; z absent everywhere, not averaged.
    assert result.per_label["x"].f1 == pytest.approx(0.8)
    assert result.macro_f1 == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_scores_round_trip_through_their_metrics_json_form():
    gold, probabilities = random_predictions(30, seed=4)
    scores = score_predictions(probabilities, gold, TOPICS, SPEAKERS, [0.5] * len(TOPICS))
    assert Scores.from_dict(json.loads(json.dumps(scores.to_dict()))) == scores
    assert scores.to_dict()["topics"]["per_label"]["a"].keys() == {"precision", "recall", "f1", "support"}
    assert scores.headline()["combined"] == pytest.approx((scores.topics.macro_f1 + scores.speaker.macro_f1) / 2)


def test_expected_calibration_error_hand_computed():
    confidence = np.array([0.95, 0.9, 0.55, 0.45])
    correct = np.array([1, 0, 1, 0])
    # bin 9: acc 0.5 vs conf 0.925, weight 1/2; bin 5: 1 vs 0.55, 1/4; bin 4: 0 vs 0.45, 1/4.
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.5 * 0.425 + 0.25 * 0.45 + 0.25 * 0.45)
    assert expected_calibration_error(np.full(4, 0.75), np.array([1, 1, 1, 0])) == pytest.approx(0.0)
    assert expected_calibration_error(np.array([1.0]), np.array([1])) == pytest.approx(0.0)


def random_predictions(n: int, seed: int, accuracy: float = 0.7):
    """Gold labels and predictions that agree with them about `accuracy` of the time."""
    rng = np.random.default_rng(seed)
    topic_gold = (rng.random((n, len(TOPICS))) < 0.3).astype(int)
    flip = rng.random(topic_gold.shape) > accuracy
    topic_probs = np.where(flip, 1 - topic_gold, topic_gold) * 0.6 + rng.random(topic_gold.shape) * 0.3
    speaker_gold = rng.integers(0, len(SPEAKERS) - 1, n)  # the last speaker never occurs in gold
    speaker_pred = np.where(rng.random(n) < accuracy, speaker_gold, rng.integers(0, len(SPEAKERS), n))
    speaker_probs = rng.random((n, len(SPEAKERS))) * 0.5
    speaker_probs[np.arange(n), speaker_pred] += 1
    speaker_probs /= speaker_probs.sum(axis=1, keepdims=True)
    return HeadLabels(topic_gold, speaker_gold), HeadProbabilities(topic_probs, speaker_probs)


def statistics(gold: HeadLabels, probabilities: HeadProbabilities):
    return headline_statistics(gold, probabilities.decide([0.5] * len(TOPICS)), probabilities)


def statistics_for(n: int, seed: int, accuracy: float = 0.7):
    return statistics(*random_predictions(n, seed, accuracy))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_statistics_match_score_predictions_on_each_resample(seed):
    gold, probabilities = random_predictions(40, seed)
    weighted = statistics(gold, probabilities)
    draws = np.random.default_rng(seed).integers(0, 40, size=(3, 40))
    samples = [np.arange(40), *draws]
    weights = np.array([np.bincount(sample, minlength=40) for sample in samples], dtype=float)
    for row, sample in enumerate(samples):
        expected = score_predictions(probabilities.rows(sample), gold.rows(sample), TOPICS, SPEAKERS,
                                     [0.5] * len(TOPICS)).headline()
        got = {name: statistic(weights)[row] for name, statistic in weighted.items()}
        assert set(got) == set(expected)
        for name, value in expected.items():
            assert got[name] == pytest.approx(value), name


def test_resample_weights_are_draws_with_replacement():
    weights = resample_weights(30, n_resamples=200, seed=5)
    assert weights.shape == (200, 30)
    assert (weights.sum(axis=1) == 30).all()
    assert (weights == 0).any(axis=1).mean() > 0.9  # almost every resample misses some sentence
    assert np.array_equal(weights, resample_weights(30, n_resamples=200, seed=5))


@pytest.mark.parametrize("metric", ["topic_micro_f1", "topic_macro_f1", "speaker_accuracy", "speaker_macro_f1",
                                    "combined", "speaker_ece"])
def test_bootstrap_interval_contains_point_and_shrinks_with_more_data(metric):
    widths = []
    for n in (40, 1000):
        interval = bootstrap_interval(statistics_for(n, seed=n)[metric], resample_weights(n))
        assert interval.low <= interval.point <= interval.high
        widths.append(interval.high - interval.low)
    assert widths[1] < widths[0] / 2


def test_paired_bootstrap_tells_real_from_chance_differences():
    n = 400
    weights = resample_weights(n)
    gold, probabilities = random_predictions(n, seed=3, accuracy=0.9)
    good = statistics(gold, probabilities)
    worse_speaker = probabilities.speaker.copy()
    worse_speaker[:n // 4] = np.roll(worse_speaker[:n // 4], 1, axis=1)  # a quarter of the answers changed
    worse = statistics(gold, HeadProbabilities(probabilities.topics, worse_speaker))

    real = paired_bootstrap(worse["speaker_accuracy"], good["speaker_accuracy"], weights)
    assert real.difference < -0.1 and real.high < 0 and real.p_value < 0.01

    same = paired_bootstrap(good["speaker_accuracy"], good["speaker_accuracy"], weights)
    assert (same.difference, same.low, same.high, same.p_value) == (0, 0, 0, 1)

    tiny = resample_weights(6)
    first = statistics(gold.rows(slice(0, 6)), probabilities.rows(slice(0, 6)))
    second_speaker = probabilities.speaker[:6].copy()
    second_speaker[0] = np.roll(second_speaker[0], 1)
    second = statistics(gold.rows(slice(0, 6)), HeadProbabilities(probabilities.topics[:6], second_speaker))
    chance = paired_bootstrap(second["speaker_accuracy"], first["speaker_accuracy"], tiny)
    assert chance.difference != 0 and chance.p_value > 0.05
    assert chance.low <= chance.difference <= chance.high
