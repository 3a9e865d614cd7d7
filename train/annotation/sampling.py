"""Which sentences to label next: uncertainty ranking with diversity rules.

A sentence teaches the model most where it is least sure. For the speaker that is
the margin between its two most likely speakers ("breaking ties", the baseline
small-text's maintainers recommend); for topics it is how close any topic score
sits to that topic's threshold. The two are averaged. Diversity keeps one long
article or the same boilerplate line from filling a batch.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from train.modeling.outputs import HeadProbabilities

_NOT_WORD = re.compile(r"[\W\d_]+")


def normalized_text(text: str) -> str:
    """A sentence's identity for de-duplication: case, ё/е, digits, punctuation and spacing ignored.

    "Подписаться на канал 12.01" and "подписаться на канал 13.01" are the same boilerplate.
    """
    return _NOT_WORD.sub(" ", text.lower().replace("ё", "е")).strip()


def speaker_uncertainty(speaker_probs: np.ndarray) -> np.ndarray:
    """1 - (p1 - p2): 1 when the two most likely speakers tie, 0 when one has all the mass."""
    top_two = np.sort(np.asarray(speaker_probs), axis=1)[:, -2:]
    return 1.0 - (top_two[:, 1] - top_two[:, 0])


def topic_uncertainty(topic_probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """1 when some topic's score sits on its threshold, 0 when every score is as far from it as it can be."""
    topic_probs = np.asarray(topic_probs)
    thresholds = np.broadcast_to(np.asarray(thresholds, dtype=float), topic_probs.shape)
    # The room on the side of the threshold where the score lies, so that both sides reach 0 at the extremes.
    room = np.where(topic_probs >= thresholds, 1.0 - thresholds, thresholds)
    closeness = 1.0 - np.abs(topic_probs - thresholds) / np.maximum(room, 1e-9)
    return closeness.max(axis=1)


def uncertainty(probabilities: HeadProbabilities, thresholds: np.ndarray) -> np.ndarray:
    """The combined ranking score: the mean of the speaker margin and the topic threshold distance."""
    return (speaker_uncertainty(probabilities.speaker) + topic_uncertainty(probabilities.topics, thresholds)) / 2


@dataclass
class Candidate:
    article: str
    index: int
    text: str
    score: float  # higher: label first


@dataclass
class DiversityRules:
    per_article: int = 3  # at most this many sentences of one article in a batch
    labelled: set[str] = field(default_factory=set)  # normalized texts that already have a label


def select(candidates: list[Candidate], n: int, rules: DiversityRules) -> list[Candidate]:
    """The `n` highest-scoring candidates that obey the diversity rules, best first.

    Ties keep the input order, so a selection is reproducible.
    """
    chosen: list[Candidate] = []
    per_article: Counter[str] = Counter()
    seen = set(rules.labelled)
    for candidate in sorted(candidates, key=lambda c: -c.score):
        if len(chosen) == n:
            break
        key = normalized_text(candidate.text)
        if not key or key in seen or per_article[candidate.article] >= rules.per_article:
            continue
        seen.add(key)
        per_article[candidate.article] += 1
        chosen.append(candidate)
    return chosen
