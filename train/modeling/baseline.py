"""The classical baseline every report compares against: TF-IDF n-grams and logistic regression.

It yields the same probability arrays as a checkpoint, so the same metrics and
bootstrap apply. Both heads use balanced class weights: with a few dozen
training sentences an unweighted model almost never lets a rare topic reach
the 0.5 threshold, and the baseline would look worse than it is.
"""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion

from train.modeling.outputs import HeadLabels, HeadProbabilities

THRESHOLD = 0.5


def tfidf_features() -> FeatureUnion:
    return FeatureUnion([
        ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
    ])


@dataclass
class TfidfBaseline:
    features: FeatureUnion
    topics: OneVsRestClassifier
    speaker: LogisticRegression | None  # None when the training split has a single speaker
    n_speakers: int
    only_speaker: int

    def predict_probabilities(self, texts: list[str]) -> HeadProbabilities:
        x = self.features.transform(texts)
        topic_probs = self.topics.predict_proba(x)
        speaker_probs = np.zeros((len(texts), self.n_speakers))
        if self.speaker is None:
            speaker_probs[:, self.only_speaker] = 1.0
        else:
            # Speakers absent from the training split keep probability 0.
            speaker_probs[:, self.speaker.classes_] = self.speaker.predict_proba(x)
        return HeadProbabilities(topic_probs, speaker_probs)

    @property
    def parameters(self) -> int:
        estimators = [*self.topics.estimators_, *([self.speaker] if self.speaker else [])]
        return int(sum(e.coef_.size + e.intercept_.size for e in estimators if hasattr(e, "coef_")))

    @property
    def size_mb(self) -> float:
        return len(pickle.dumps(self)) / 1e6


def train_baseline(texts: list[str], gold: HeadLabels, n_speakers: int) -> TfidfBaseline:
    features = tfidf_features()
    x = features.fit_transform(texts)
    with warnings.catch_warnings():
        # A topic absent from the training split gets a constant predictor; sklearn warns about it.
        warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
        topics = OneVsRestClassifier(LogisticRegression(max_iter=1000, class_weight="balanced"))
        topics.fit(x, gold.topics)
    speaker = None
    if len(np.unique(gold.speaker)) > 1:
        speaker = LogisticRegression(max_iter=1000, class_weight="balanced").fit(x, gold.speaker)
    return TfidfBaseline(features, topics, speaker, n_speakers, int(gold.speaker[0]))
