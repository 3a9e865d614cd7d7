"""Grouped, label-stratified assignment of sentences to splits and folds (pure functions).

Sentences of one article share an outlet, an event and a style, so an article
split across train and test would leak; so would the same boilerplate line on
two pages. Groups are therefore articles joined through identical texts, and
whole groups are assigned greedily so that every split keeps its share of each
label, the way iterative stratification does for single sentences.
"""

from __future__ import annotations

import numpy as np


def connected_groups(articles: list[str], texts: list[str]) -> list[int]:
    """A group id per example: examples of one article, or with one text, share a group."""
    parent = list(range(len(articles)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_of: dict[tuple[str, str], int] = {}
    for i, key in enumerate(zip(("article",) * len(articles), articles)):
        parent[root(i)] = root(first_of.setdefault(key, i))
    for i, key in enumerate(zip(("text",) * len(texts), texts)):
        parent[root(i)] = root(first_of.setdefault(key, i))
    roots = [root(i) for i in range(len(articles))]
    numbering: dict[int, int] = {}
    return [numbering.setdefault(r, len(numbering)) for r in roots]


def assign_groups(labels: np.ndarray, groups: list[int], fractions: list[float], seed: int,
                  trials: int = 64) -> list[int]:
    """A bin per example, whole groups at a time, each bin near its fraction of every label column.

    A greedy pass places groups roughly largest first into the bin with the largest unmet
    share of the group's labels (sentences count as one more column). With a few dozen
    articles one pass can leave a rare label nearly absent from a small bin, so `trials`
    seeded orderings are tried and the assignment closest to the targets is kept.
    """
    labels = np.column_stack([np.asarray(labels, dtype=float), np.ones(len(groups))])
    n_groups = max(groups) + 1
    group_counts = np.zeros((n_groups, labels.shape[1]))
    np.add.at(group_counts, groups, labels)
    targets = np.outer(fractions, group_counts.sum(axis=0))
    rng = np.random.default_rng(seed)
    best_bins, best_error = None, np.inf
    for _ in range(trials):
        bins, filled = _greedy_pass(group_counts, targets, rng.uniform(0.5, 1.5, n_groups))
        error = (((filled - targets) / np.maximum(targets, 1.0)) ** 2).sum()
        if error < best_error:
            best_bins, best_error = bins, error
    return [int(best_bins[g]) for g in groups]


def _greedy_pass(group_counts: np.ndarray, targets: np.ndarray, jitter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = np.maximum(group_counts.sum(axis=0), 1.0)
    filled = np.zeros_like(targets)
    bins = np.zeros(len(group_counts), dtype=int)
    # Roughly largest first: big groups are hard to place late.
    for group in np.argsort(-group_counts[:, -1] * jitter, kind="stable"):
        deficit = (targets - filled) / scale
        gain = (deficit * (group_counts[group] > 0)).sum(axis=1)
        best = int(np.argmax(gain + 1e-9 * deficit[:, -1]))
        bins[group] = best
        filled[best] += group_counts[group]
    return bins, filled
