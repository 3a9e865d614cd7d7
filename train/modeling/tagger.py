"""The public tagging API: `Tagger.from_pretrained(path).predict(texts)`."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from train.data.segment import article_contexts, split_sentences
from train.errors import UsageError
from train.modeling.checkpoint import open_checkpoint
from train.modeling.inference import predict_probabilities
from train.sources.extract import PREDICTED_SPEAKER_MIN_CONFIDENCE, SourceExtractor
from train.sources.roles import load_roles

SCORE_DECIMALS = 4


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantization of the encoder's Linear layers (CPU); the two small heads stay fp32."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao, still works
        model.encoder = torch.ao.quantization.quantize_dynamic(model.encoder, {torch.nn.Linear}, dtype=torch.qint8)
    return model


class Tagger:
    """A loaded checkpoint that tags articles: `Tagger.from_pretrained(path).predict(texts)`."""

    def __init__(self, model, tokenizer, batch_size: int = 64, sources: SourceExtractor | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        # Who each sentence quotes (data/GUIDELINES.md §9), gated by the predicted speaker; None: not tagged.
        self.sources = sources
        self.topics: list[str] = list(model.config.topics)
        self.speakers: list[str] = list(model.config.speakers)
        self.thresholds = np.asarray(model.config.topic_thresholds, dtype=np.float32)

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str | None = None, int8: bool = False,
                        num_threads: int | None = None, batch_size: int = 64, sources: bool = True,
                        roles: str | Path | None = None) -> Tagger:
        """Load a checkpoint (default: models/latest): fp32 on CPU, int8 on request (CPU); bf16 on a GPU.

        With `sources`, every sentence also gets its named sources and quote kind, names resolved through the
        packaged roles table with `roles` (a user table, the config key `sources.roles`) merged over it.
        """
        if num_threads:
            torch.set_num_threads(num_threads)
        device = torch.device(device or ("cuda" if torch.cuda.is_available() and not int8 else "cpu"))
        if int8 and device.type != "cpu":
            raise UsageError("--int8 runs on CPU only; on a GPU the model runs in bf16")
        checkpoint = open_checkpoint(path)
        if int8 and not checkpoint.supports_int8:
            raise UsageError("--int8 quantizes transformer encoders; this checkpoint is the navec model, already "
                             "fast in fp32")
        model, tokenizer = checkpoint.load(device)
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            model = model.to(torch.bfloat16)
        if int8:
            model = quantize_int8(model)
        extractor = SourceExtractor(load_roles(roles), min_confidence=PREDICTED_SPEAKER_MIN_CONFIDENCE) \
            if sources else None
        return cls(model, tokenizer, batch_size, extractor)

    def predict(self, texts: list[str] | str) -> list[list[dict]]:
        """One list of sentence dicts per article (a single string is one article)."""
        articles = [texts] if isinstance(texts, str) else texts
        return self.tag_sentences([split_sentences(text) for text in articles])

    def tag_sentences(self, articles: list[list[str]], progress: Callable[[int], object] | None = None,
                      dates: list[str | None] | None = None) -> list[list[dict]]:
        """Tag already segmented articles; each sentence's context is the previous sentence of its article.

        `progress` is called with the number of sentences of each batch as it is tagged. `dates` (ISO, per
        article) resolve roles to whoever held them then ("госсекретарь США"), as the roles table dates them.
        """
        texts = [sentence for sentences in articles for sentence in sentences]
        contexts = [context for sentences in articles for context in article_contexts(sentences)]
        probabilities = predict_probabilities(self.model, self.tokenizer, texts, contexts, self.batch_size, progress)
        decided, confidence = probabilities.decide(self.thresholds), probabilities.speaker_confidence
        results, row = [], 0
        for number, sentences in enumerate(articles):
            tagged = []
            speakers = [self.speakers[i] for i in decided.speaker[row:row + len(sentences)]]
            confidences = confidence[row:row + len(sentences)].tolist()
            date = dates[number] if dates else None
            found = self.sources.extract(sentences, speakers, date, confidences) if self.sources else None
            for index, text in enumerate(sentences):
                tagged.append({
                    "index": index,
                    "text": text,
                    "topics": [t for t, on in zip(self.topics, decided.topics[row]) if on],
                    "topic_scores": _scores(self.topics, probabilities.topics[row]),
                    "speaker": self.speakers[decided.speaker[row]],
                    "speaker_scores": _scores(self.speakers, probabilities.speaker[row]),
                })
                if found is not None:
                    tagged[-1].update(sources=[s.to_dict() for s in found[index].sources], quote=found[index].quote)
                row += 1
            results.append(tagged)
        return results


def _scores(labels: list[str], probabilities: np.ndarray) -> dict[str, float]:
    return {label: round(float(p), SCORE_DECIMALS) for label, p in zip(labels, probabilities)}
