"""Benchmark figures: the median of several runs with its range, and a median under its target flagged."""

from train.bench.spread import describe, spread, verdict


def test_a_figure_is_the_median_with_its_range():
    figure = spread([1.99, 2.45, 2.20])
    assert (figure["median"], figure["min"], figure["max"]) == (2.20, 1.99, 2.45)
    assert describe(figure, "x", 2) == "2.20x (1.99-2.45x, 3 runs)"


def test_a_median_under_its_target_is_flagged_missed():
    assert verdict(spread([1.99, 2.45, 2.20]), 2.0) == "2x target: met"
    assert verdict(spread([3.84, 4.00, 6.74]), 3.0) == "3x target: met"
    assert verdict(spread([1.5, 2.6, 1.9]), 2.0) == "2x target: MISSED"
