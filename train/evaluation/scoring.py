"""`make evaluate`: score a checkpoint on the test split or on any labelled JSONL file.

    python -m train.evaluation.scoring --model models/<run> [--data other_outlet.jsonl] [--out metrics.json]

Writes metrics.json (by default to <model>/eval/<data name>/) and, beside it,
predictions.jsonl with every sentence's gold and predicted labels.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from train.atomic import write_file_atomically
from train.config import DataConfig
from train.data.annotations import read_records
from train.data.build import build_dataset
from train.data.scheme import LabelScheme, load_scheme
from train.data.segment import previous_sentences
from train.errors import UserError
from train.evaluation.metrics import Scores, score_predictions
from train.modeling.checkpoint import Checkpoint, write_json
from train.modeling.inference import predict_probabilities
from train.modeling.outputs import HeadLabels, HeadProbabilities
from train.sources.evaluation import SourceEvaluation, evaluate_sources
from train.sources.extract import PREDICTED_SPEAKER_MIN_CONFIDENCE, SentenceSources, SourceExtractor
from train.sources.roles import load_roles
from train.sources.schema import Source, sources_from_record

WARM_UP_SENTENCES = 16


class EvaluationError(UserError):
    """Data that cannot be scored with a checkpoint; the message names the path."""


@dataclass
class LabelledData:
    """Gold-labelled sentences in one label scheme, in article order."""
    name: str
    source: str
    scheme: LabelScheme
    ids: list[str]
    articles: list[str]
    outlets: list[str]
    texts: list[str]
    contexts: list[str]
    gold: HeadLabels
    kinds: list[str] | None = None  # source kind per sentence (seed, authored, imported) when known
    event_families: list[str] | None = None  # event family per sentence, for leave-event-out measures
    # labelled sources and quote kind per sentence (data/GUIDELINES.md §9), when every sentence carries them
    source_gold: list[tuple[Source, ...]] | None = None
    quote_gold: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class Predictions:
    probabilities: HeadProbabilities
    thresholds: list[float]
    sentences_per_second: float

    @property
    def labels(self) -> HeadLabels:
        """The decided labels: topics at the thresholds, the most probable speaker."""
        return self.probabilities.decide(self.thresholds)

    def rows(self, index) -> Predictions:
        return Predictions(self.probabilities.rows(index), self.thresholds, self.sentences_per_second)


def split_data(data_config: DataConfig, split: str = "test", fingerprint: str | None = None,
               trained_by: Path | None = None) -> LabelledData:
    """A split of the dataset built from `data_config` (built first when missing or stale).

    With `fingerprint` (a run's own), the split must be the one that run was trained
    against: once the annotations or split settings change it cannot be rebuilt, and
    scoring on the new split would mix the run's training sentences into its test set.
    """
    scheme = load_scheme(data_config.labels)
    build = build_dataset(data_config)
    if fingerprint is not None and build.fingerprint != fingerprint:
        raise EvaluationError(
            f"{trained_by}: trained on data with fingerprint {fingerprint}, but its data config now builds "
            f"{build.fingerprint} (annotations or split settings changed since), so its test split can no longer be "
            "rebuilt; score it on a labelled file (--data file.jsonl) or retrain")
    rows = build.dataset[split]
    if len(rows) == 0:
        raise EvaluationError(f"{data_config.build_dir}: the {split} split is empty; label more sentences")
    return LabelledData(
        name=split, source=f"{data_config.build_dir} ({split} split)", scheme=scheme,
        ids=list(rows["id"]), articles=list(rows["article"]), outlets=list(rows["outlet"]), kinds=list(rows["kind"]),
        event_families=list(rows["event_family"]),
        texts=list(rows["text"]), contexts=list(rows["context"]),
        gold=HeadLabels.of_split(rows), **_source_labels(list(rows)))


def _source_labels(records: list[dict]) -> dict:
    """source_gold and quote_gold when every record carries source labels (a built row has quote "" without)."""
    if not records or not all(r.get("quote") for r in records):
        return {}
    return {"source_gold": [tuple(sources_from_record(r)) for r in records], "quote_gold": [r["quote"] for r in records]}


def _parse_jsonl(path: Path, scheme: LabelScheme, model_path: Path) -> list[dict]:
    """Records of an annotation-format file, checked by the same validator as `make data`."""
    records, errors = read_records(path, scheme)
    if errors:
        raise EvaluationError("\n".join(f"{problem} (checkpoint {model_path})" for problem in errors))
    return [record for _, record in records]


def jsonl_data(path: str | Path, scheme: LabelScheme, model_path: str | Path) -> LabelledData:
    """Sentences of an annotation-format JSONL file; every label must be in the checkpoint's scheme."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"{path}: data file not found")
    records = _parse_jsonl(path, scheme, Path(model_path))
    if not records:
        raise EvaluationError(f"{path}: no labelled sentences; expected one JSON object per line")
    return records_data(path, records, scheme)


def records_data(path: Path, records: list[dict], scheme: LabelScheme) -> LabelledData:
    """Validated annotation-format records as LabelledData, in article order."""
    records = sorted(records, key=lambda r: (str(r["article"]), r["index"]))
    articles = [str(r["article"]) for r in records]
    return LabelledData(
        name=path.stem, source=str(path), scheme=scheme,
        ids=[f"{r['article']}:{r['index']}" for r in records], articles=articles,
        outlets=[str(r.get("outlet", path.stem)) for r in records],
        texts=[r["text"] for r in records],
        contexts=previous_sentences(records),
        gold=HeadLabels.of_records(records, scheme),
        **_source_labels(records))


def load_data(checkpoint: Checkpoint, data_path: str | Path | None) -> LabelledData:
    """The data a checkpoint is scored on: a JSONL file, or the test split of the data it was trained on."""
    if data_path is not None:
        return jsonl_data(data_path, checkpoint.scheme, checkpoint.path)
    data = split_data(checkpoint.train_config.data, fingerprint=checkpoint.data_fingerprint,
                      trained_by=checkpoint.path)
    check_scheme(checkpoint, data)
    return data


def check_scheme(checkpoint: Checkpoint, data: LabelledData) -> None:
    if checkpoint.scheme != data.scheme:
        raise EvaluationError(
            f"{checkpoint.path}: checkpoint labels differ from those of {data.source} "
            f"(checkpoint topics: {', '.join(checkpoint.scheme.topics)}; speakers: "
            f"{', '.join(checkpoint.scheme.speakers)}); score it on data labelled in its own scheme")


def predict(checkpoint: Checkpoint, data: LabelledData) -> tuple[Predictions, dict]:
    """Probabilities for every sentence, timed after a warm-up batch, and the model's size."""
    model, tokenizer = checkpoint.load()
    predict_probabilities(model, tokenizer, data.texts[:WARM_UP_SENTENCES], data.contexts[:WARM_UP_SENTENCES])
    start = time.perf_counter()
    probabilities = predict_probabilities(model, tokenizer, data.texts, data.contexts)
    elapsed = time.perf_counter() - start
    size = {
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "size_mb": sum(f.stat().st_size for f in checkpoint.path.glob("*.safetensors")) / 1e6,
        "device": f"cpu ({torch.get_num_threads()} threads)",
    }
    predictions = Predictions(probabilities, list(checkpoint.thresholds),
                              len(data) / elapsed if elapsed > 0 else float("inf"))
    return predictions, size


def score_by_source_kind(data: LabelledData, predictions: Predictions) -> dict[str, dict]:
    """Headline metrics per source kind (seed, authored, imported): authored text may be easier than real pages."""
    if not data.kinds:
        return {}
    kinds = np.array(data.kinds)
    result = {}
    for kind in sorted(set(data.kinds)):
        rows = kinds == kind
        result[kind] = {"n_sentences": int(rows.sum()),
                        **score(data.scheme, data.gold.rows(rows), predictions.rows(rows)).headline()}
    return result


def score(scheme: LabelScheme, gold: HeadLabels, predictions: Predictions) -> Scores:
    return score_predictions(predictions.probabilities, gold, scheme.topics, scheme.speakers, predictions.thresholds)


def sentence_records(data: LabelledData, predictions: Predictions) -> list[dict]:
    scheme, predicted = data.scheme, predictions.labels
    confidence = predictions.probabilities.speaker_confidence
    return [{
        "id": data.ids[i], "article": data.articles[i], "outlet": data.outlets[i], "text": data.texts[i],
        "gold_topics": scheme.decode_topics(data.gold.topics[i].tolist()),
        "gold_speaker": scheme.decode_speaker(int(data.gold.speaker[i])),
        "topics": scheme.decode_topics(predicted.topics[i].tolist()),
        "speaker": scheme.decode_speaker(int(predicted.speaker[i])),
        "speaker_confidence": round(float(confidence[i]), 4),
    } for i in range(len(data))]


def evaluate_checkpoint(checkpoint: Checkpoint, data_path: str | Path | None = None) -> dict:
    """metrics.json's content, plus "predictions": one record per sentence."""
    data = load_data(checkpoint, data_path)
    predictions, size = predict(checkpoint, data)
    records = sentence_records(data, predictions)
    result = {
        "model": str(checkpoint.path), "data": data.source,
        **score(data.scheme, data.gold, predictions).to_dict(),
        "by_source_kind": score_by_source_kind(data, predictions),
        "sentences_per_second": predictions.sentences_per_second, **size,
    }
    if data.source_gold is not None:
        evaluation, found = score_sources(data, predictions)
        result["sources"] = evaluation.to_dict()
        for record, gold, quote, predicted in zip(records, data.source_gold, data.quote_gold, found):
            record.update(gold_sources=[s.name for s in gold], gold_quote=quote,
                          sources=[s.name for s in predicted.sources], quote=predicted.quote)
    return {**result, "predictions": records}


def score_sources(data: LabelledData, predictions: Predictions) -> tuple[SourceEvaluation, list[SentenceSources]]:
    """The source extractor gated by the predicted speakers, scored against the labelled sources.

    Names resolve through the packaged roles table, whose version the result records (a checkpoint carries no
    table of its own: the table is data about the world, not something a run learns)."""
    speakers = [data.scheme.decode_speaker(int(i)) for i in predictions.labels.speaker]
    gold_speakers = [data.scheme.decode_speaker(int(i)) for i in data.gold.speaker]
    extractor = SourceExtractor(load_roles(), min_confidence=PREDICTED_SPEAKER_MIN_CONFIDENCE)  # as the Tagger's
    return evaluate_sources(extractor, data.articles, data.texts, speakers, predictions.probabilities.speaker_confidence.tolist(),
                            data.source_gold, data.quote_gold, gold_speakers, data.kinds)


def write_results(result: dict, out: Path) -> None:
    metrics = {k: v for k, v in result.items() if k != "predictions"}
    predictions = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in result["predictions"])
    write_file_atomically(out.with_name("predictions.jsonl"), lambda p: p.write_text(predictions, encoding="utf-8"))
    write_file_atomically(out, lambda p: write_json(p, metrics))
