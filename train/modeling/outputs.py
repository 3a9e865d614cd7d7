"""What the two heads say about a batch of sentences, as one object each for probabilities and labels.

Every stage that reads a tagger's output (training's threshold tuning, evaluation, the annotation loop, the
coverage estimates) takes these instead of parallel topic and speaker arrays, so a head added later is a
field here rather than a new argument through a dozen signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeadLabels:
    """Labels of both heads, gold or decided, in sentence order."""
    topics: np.ndarray  # (sentences, topics) 0/1
    speaker: np.ndarray  # (sentences,) speaker ids

    def __post_init__(self):
        object.__setattr__(self, "topics", np.asarray(self.topics, dtype=int))
        object.__setattr__(self, "speaker", np.asarray(self.speaker, dtype=int))

    @classmethod
    def of_split(cls, split) -> HeadLabels:
        """The gold labels of a built dataset split (its `topic_labels` and `speaker_label` columns)."""
        return cls(np.asarray(split["topic_labels"], dtype=int).reshape(len(split), -1), split["speaker_label"])

    @classmethod
    def of_records(cls, records: Sequence[dict], scheme) -> HeadLabels:
        """The labels of annotation-format records (`topics`, `speaker`), encoded in `scheme` (a LabelScheme)."""
        return cls(np.array([scheme.encode_topics(r["topics"]) for r in records], dtype=int)
                   .reshape(len(records), len(scheme.topics)), [scheme.encode_speaker(r["speaker"]) for r in records])

    @classmethod
    def concatenate(cls, parts: Sequence[HeadLabels]) -> HeadLabels:
        return cls(np.concatenate([p.topics for p in parts]), np.concatenate([p.speaker for p in parts]))

    def __len__(self) -> int:
        return len(self.speaker)

    def rows(self, index) -> HeadLabels:
        """The labels of the sentences a boolean mask or an index array selects."""
        return HeadLabels(self.topics[index], self.speaker[index])

    def speaker_onehot(self, n_speakers: int) -> np.ndarray:
        return np.eye(n_speakers)[self.speaker]


@dataclass(frozen=True)
class HeadProbabilities:
    """Probabilities of both heads in sentence order: an independent sigmoid per topic, a softmax over speakers."""
    topics: np.ndarray  # (sentences, topics)
    speaker: np.ndarray  # (sentences, speakers)

    @classmethod
    def zeros(cls, sentences: int, topics: int, speakers: int) -> HeadProbabilities:
        return cls(np.zeros((sentences, topics), dtype=np.float32), np.zeros((sentences, speakers), dtype=np.float32))

    @classmethod
    def concatenate(cls, parts: Sequence[HeadProbabilities]) -> HeadProbabilities:
        return cls(np.concatenate([p.topics for p in parts]), np.concatenate([p.speaker for p in parts]))

    def __len__(self) -> int:
        return len(self.speaker)

    def rows(self, index) -> HeadProbabilities:
        """The probabilities of the sentences a boolean mask or an index array selects."""
        return HeadProbabilities(self.topics[index], self.speaker[index])

    def put(self, index, part: HeadProbabilities) -> None:
        """Write `part` into the rows `index` selects (the arrays are filled batch by batch)."""
        self.topics[index], self.speaker[index] = part.topics, part.speaker

    def decide(self, thresholds: Sequence[float] | np.ndarray) -> HeadLabels:
        """Topics at or above their thresholds, the most probable speaker."""
        return HeadLabels(_apply_thresholds(self.topics, thresholds), self.speaker.argmax(axis=1))

    @property
    def speaker_confidence(self) -> np.ndarray:
        """The probability of each sentence's predicted speaker."""
        return self.speaker.max(axis=1)

    def blend(self, other: HeadProbabilities, weight: float) -> HeadProbabilities:
        """(1 - weight) * self + weight * other, head by head, in float32."""
        return HeadProbabilities(((1 - weight) * self.topics + weight * other.topics).astype(np.float32),
                                 ((1 - weight) * self.speaker + weight * other.speaker).astype(np.float32))

    def mean(self, other: HeadProbabilities) -> HeadProbabilities:
        return self.blend(other, 0.5)


@dataclass(frozen=True)
class HeadPredictions:
    """A tagger's output for a batch of sentences: the labels it decided and the probabilities behind them."""
    labels: HeadLabels
    probabilities: HeadProbabilities

    @classmethod
    def concatenate(cls, parts: Sequence[HeadPredictions]) -> HeadPredictions:
        return cls(HeadLabels.concatenate([p.labels for p in parts]),
                   HeadProbabilities.concatenate([p.probabilities for p in parts]))

    def __len__(self) -> int:
        return len(self.labels)


def _apply_thresholds(probabilities: np.ndarray, thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    return (np.asarray(probabilities) >= np.asarray(thresholds)[None, :]).astype(int)
