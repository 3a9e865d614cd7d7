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
from train.config import DEFAULT_CONFIG, DataConfig, load_config
from train.data.annotations import read_lines, validate_record
from train.data.build import load_built
from train.data.scheme import LabelScheme, load_scheme
from train.errors import UserError
from train.evaluation.metrics import apply_thresholds, score_predictions
from train.modeling.checkpoint import check_checkpoint, checkpoint_scheme, load_checkpoint, write_json
from train.modeling.inference import predict_probabilities

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
    topic_gold: np.ndarray  # (sentences, topics) 0/1
    speaker_gold: np.ndarray  # (sentences,) speaker ids

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class Predictions:
    topic_probs: np.ndarray
    speaker_probs: np.ndarray
    thresholds: list[float]
    sentences_per_second: float

    @property
    def topic_pred(self) -> np.ndarray:
        return apply_thresholds(self.topic_probs, self.thresholds)

    @property
    def speaker_pred(self) -> np.ndarray:
        return self.speaker_probs.argmax(axis=1)


def split_data(data_config: DataConfig, split: str = "test") -> LabelledData:
    """A split of the built dataset (built first when missing or stale), in configs/labels.yaml's scheme."""
    scheme = load_scheme(data_config.labels)
    rows = load_built(data_config)[split]
    if len(rows) == 0:
        raise EvaluationError(f"{data_config.build_dir}: the {split} split is empty; label more sentences")
    return LabelledData(
        name=split, source=f"{data_config.build_dir} ({split} split)", scheme=scheme,
        ids=list(rows["id"]), articles=list(rows["article"]), outlets=list(rows["outlet"]),
        texts=list(rows["text"]), contexts=list(rows["context"]),
        topic_gold=np.asarray(rows["topic_labels"], dtype=int).reshape(len(rows), len(scheme.topics)),
        speaker_gold=np.asarray(rows["speaker_label"], dtype=int))


def _parse_jsonl(path: Path, scheme: LabelScheme, model_path: Path) -> list[dict]:
    """Records of an annotation-format file, checked by the same validator as `make data`."""
    records, errors, seen = [], [], set()
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"{where}: invalid JSON ({e.msg}); write one JSON object per line")
            continue
        problems = validate_record(record, where, scheme)
        if problems:
            errors.extend(f"{problem} (checkpoint {model_path})" for problem in problems)
            continue
        key = (record["article"], record["index"])
        if key in seen:
            errors.append(f"{where}: sentence {key[1]} of article {key[0]!r} is labelled twice")
        seen.add(key)
        records.append(record)
    if errors:
        raise EvaluationError("\n".join(errors))
    return records


def jsonl_data(path: str | Path, scheme: LabelScheme, model_path: str | Path) -> LabelledData:
    """Sentences of an annotation-format JSONL file; every label must be in the checkpoint's scheme."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"{path}: data file not found")
    records = _parse_jsonl(path, scheme, Path(model_path))
    if not records:
        raise EvaluationError(f"{path}: no labelled sentences; expected one JSON object per line")
    records.sort(key=lambda r: (str(r["article"]), r["index"]))
    text_at = {(str(r["article"]), r["index"]): r["text"] for r in records}
    articles = [str(r["article"]) for r in records]
    return LabelledData(
        name=path.stem, source=str(path), scheme=scheme,
        ids=[f"{r['article']}:{r['index']}" for r in records], articles=articles,
        outlets=[str(r.get("outlet", path.stem)) for r in records],
        texts=[r["text"] for r in records],
        contexts=[text_at.get((a, r["index"] - 1), "") for a, r in zip(articles, records)],
        topic_gold=np.array([scheme.encode_topics(r["topics"]) for r in records], dtype=int)
        .reshape(len(records), len(scheme.topics)),
        speaker_gold=np.array([scheme.encode_speaker(r["speaker"]) for r in records], dtype=int))


def load_data(model_path: str | Path, data_path: str | Path | None, data_config: DataConfig) -> LabelledData:
    """The data a checkpoint is scored on: a JSONL file, or the test split when none is given."""
    scheme = checkpoint_scheme(model_path)
    if data_path is not None:
        return jsonl_data(data_path, scheme, model_path)
    data = split_data(data_config)
    check_scheme(model_path, data)
    return data


def check_scheme(model_path: str | Path, data: LabelledData) -> None:
    scheme = checkpoint_scheme(model_path)
    if scheme != data.scheme:
        raise EvaluationError(
            f"{model_path}: checkpoint labels differ from those of {data.source} "
            f"(checkpoint topics: {', '.join(scheme.topics)}; speakers: {', '.join(scheme.speakers)}); "
            "score it on data labelled in its own scheme")


def predict(model_path: str | Path, data: LabelledData) -> tuple[Predictions, dict]:
    """Probabilities for every sentence, timed after a warm-up batch, and the model's size."""
    model, tokenizer = load_checkpoint(model_path)
    predict_probabilities(model, tokenizer, data.texts[:WARM_UP_SENTENCES], data.contexts[:WARM_UP_SENTENCES])
    start = time.perf_counter()
    topic_probs, speaker_probs = predict_probabilities(model, tokenizer, data.texts, data.contexts)
    elapsed = time.perf_counter() - start
    size = {
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "size_mb": (Path(model_path) / "model.safetensors").stat().st_size / 1e6,
        "device": f"cpu ({torch.get_num_threads()} threads)",
    }
    predictions = Predictions(topic_probs, speaker_probs, list(model.config.topic_thresholds),
                              len(data) / elapsed if elapsed > 0 else float("inf"))
    return predictions, size


def score(data: LabelledData, predictions: Predictions) -> dict:
    return score_predictions(predictions.topic_probs, data.topic_gold, predictions.speaker_probs, data.speaker_gold,
                             list(data.scheme.topics), list(data.scheme.speakers), predictions.thresholds)


def sentence_records(data: LabelledData, predictions: Predictions) -> list[dict]:
    scheme, topic_pred, speaker_pred = data.scheme, predictions.topic_pred, predictions.speaker_pred
    return [{
        "id": data.ids[i], "article": data.articles[i], "outlet": data.outlets[i], "text": data.texts[i],
        "gold_topics": scheme.decode_topics(data.topic_gold[i].tolist()),
        "gold_speaker": scheme.decode_speaker(int(data.speaker_gold[i])),
        "topics": scheme.decode_topics(topic_pred[i].tolist()),
        "speaker": scheme.decode_speaker(int(speaker_pred[i])),
        "speaker_confidence": round(float(predictions.speaker_probs[i].max()), 4),
    } for i in range(len(data))]


def evaluate_checkpoint(model_path: str | Path, data_path: str | Path | None = None,
                        data_config: DataConfig | None = None) -> dict:
    """metrics.json's content, plus "predictions": one record per sentence."""
    model_path = check_checkpoint(model_path)
    data = load_data(model_path, data_path, data_config or load_config(DEFAULT_CONFIG).data)
    predictions, size = predict(model_path, data)
    return {
        "model": str(model_path), "data": data.source, **score(data, predictions),
        "sentences_per_second": predictions.sentences_per_second, **size,
        "predictions": sentence_records(data, predictions),
    }


def write_results(result: dict, out: Path) -> None:
    metrics = {k: v for k, v in result.items() if k != "predictions"}
    predictions = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in result["predictions"])
    write_file_atomically(out.with_name("predictions.jsonl"), lambda p: p.write_text(predictions, encoding="utf-8"))
    write_file_atomically(out, lambda p: write_json(p, metrics))
