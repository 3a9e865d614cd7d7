"""The lexical half of a tagger: the TF-IDF baseline's features and logistic regressions, stored as arrays.

Leave-event-out cross-validation shows that averaging the transformer's probabilities with those of TF-IDF
n-grams beats either alone on coverage of an unseen event (README: recipes). The fitted baseline is kept in
the run directory as plain data (vocabularies in JSON, idf and coefficients in safetensors) rather than a
pickle, so a checkpoint stays safe to open and readable without scikit-learn's internals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

from train.modeling.baseline import TfidfBaseline
from train.modeling.heads import ABSENT_LOGIT, softmax_rows
from train.modeling.outputs import HeadProbabilities

VOCABULARY_FILE = "lexical_vocabulary.json"
WEIGHTS_FILE = "lexical.safetensors"


@dataclass
class LexicalBlock:
    """One TF-IDF block of the baseline's FeatureUnion (word or character n-grams)."""

    analyzer: str
    ngram_range: tuple[int, int]
    vocabulary: dict[str, int]
    idf: np.ndarray

    def transform(self, texts: list[str]) -> sparse.csr_matrix:
        counts = CountVectorizer(analyzer=self.analyzer, ngram_range=self.ngram_range,
                                 vocabulary=self.vocabulary).transform(texts).astype(np.float64).tocsr()
        counts.data = 1.0 + np.log(counts.data)  # sublinear tf, as the baseline's TfidfVectorizer
        weighted = counts.multiply(self.idf).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1))).ravel()
        norms[norms == 0] = 1.0
        return sparse.csr_matrix(weighted.multiply(1.0 / norms[:, None]))


@dataclass
class LexicalModel:
    blocks: list[LexicalBlock]
    topic_weight: np.ndarray  # (topics, features)
    topic_bias: np.ndarray
    speaker_weight: np.ndarray  # (speakers, features)
    speaker_bias: np.ndarray

    @classmethod
    def from_baseline(cls, baseline: TfidfBaseline, n_speakers: int) -> LexicalModel:
        blocks = []
        for _, vectorizer in baseline.features.transformer_list:
            blocks.append(LexicalBlock(vectorizer.analyzer, tuple(vectorizer.ngram_range),
                                       {term: int(i) for term, i in vectorizer.vocabulary_.items()},
                                       vectorizer.idf_.astype(np.float64)))
        width = sum(len(b.vocabulary) for b in blocks)
        topic_weight, topic_bias = np.zeros((len(baseline.topics.estimators_), width)), np.zeros(
            len(baseline.topics.estimators_))
        for i, estimator in enumerate(baseline.topics.estimators_):
            if hasattr(estimator, "coef_"):
                topic_weight[i], topic_bias[i] = estimator.coef_[0], estimator.intercept_[0]
            else:  # a topic constant in the training split: OneVsRest keeps a constant predictor
                constant = float(np.clip(estimator.y_[0] if np.ndim(estimator.y_) else estimator.y_, 0, 1))
                topic_bias[i] = -ABSENT_LOGIT if constant else ABSENT_LOGIT
        if baseline.speaker is None:
            speaker_weight, speaker_bias = np.zeros((n_speakers, width)), np.full(n_speakers, ABSENT_LOGIT)
            speaker_bias[baseline.only_speaker] = 0.0
        else:
            s = baseline.speaker
            speaker_weight, speaker_bias = softmax_rows(s.classes_, s.coef_, s.intercept_, n_speakers)
        return cls(blocks, topic_weight, topic_bias, speaker_weight, speaker_bias)

    def features(self, texts: list[str]) -> sparse.csr_matrix:
        return sparse.hstack([block.transform(texts) for block in self.blocks]).tocsr()

    def predict_probabilities(self, texts: list[str]) -> HeadProbabilities:
        x = self.features(texts)
        topic = 1.0 / (1.0 + np.exp(-(x @ self.topic_weight.T + self.topic_bias)))
        logits = x @ self.speaker_weight.T + self.speaker_bias
        logits -= logits.max(axis=1, keepdims=True)
        speaker = np.exp(logits)
        speaker /= speaker.sum(axis=1, keepdims=True)
        return HeadProbabilities(topic.astype(np.float32), speaker.astype(np.float32))

    def save(self, directory: Path) -> None:
        vocabulary = [{"analyzer": b.analyzer, "ngram_range": list(b.ngram_range), "vocabulary": b.vocabulary}
                      for b in self.blocks]
        (directory / VOCABULARY_FILE).write_text(json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8")
        arrays = {f"idf.{i}": b.idf for i, b in enumerate(self.blocks)}
        arrays.update(topic_weight=self.topic_weight, topic_bias=self.topic_bias,
                      speaker_weight=self.speaker_weight, speaker_bias=self.speaker_bias)
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}, directory / WEIGHTS_FILE)
        (directory / WEIGHTS_FILE).chmod(0o644)  # safetensors writes it private; the run is meant to be read

    @classmethod
    def load(cls, directory: Path) -> LexicalModel | None:
        """The run's lexical model, or None for a run without one."""
        if not (directory / WEIGHTS_FILE).is_file():
            return None
        arrays = {k: v.astype(np.float64) for k, v in load_file(directory / WEIGHTS_FILE).items()}
        blocks = [LexicalBlock(b["analyzer"], tuple(b["ngram_range"]), b["vocabulary"], arrays[f"idf.{i}"])
                  for i, b in enumerate(json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8")))]
        return cls(blocks, arrays["topic_weight"], arrays["topic_bias"], arrays["speaker_weight"],
                   arrays["speaker_bias"])

