"""Build the train/validation/test dataset from validated annotations.

Inputs: the label scheme, the seed articles and their metadata, every
`data/annotations/*.jsonl`. Output: `data/build/` with a `datasets.DatasetDict`,
a 5-fold assignment for cross-validation and a manifest holding the inputs'
fingerprint, so an unchanged build is skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import yaml
from datasets import Dataset, DatasetDict, load_from_disk

from train.atomic import write_directory_atomically
from train.config import DataConfig
from train.data.annotations import Article, DataError, load_annotations, load_articles
from train.data.scheme import LabelScheme, SchemeError, load_scheme
from train.data.segment import previous_sentences
from train.data.splits import assign_groups, connected_groups
from train.sources.schema import SOURCE_FIELDS

# Bump when the build logic changes so that old builds are not reused.
BUILD_VERSION = "6"
SOURCES_FEATURE = datasets.List({"name": datasets.Value("string"), "mention": datasets.Value("string"),
                                 "start": datasets.Value("int64"), "end": datasets.Value("int64"),
                                 "type": datasets.Value("string"), "relayed_by": datasets.Value("string")})
SPLITS = ("train", "validation", "test")


@dataclass
class BuildResult:
    path: Path
    fingerprint: str
    skipped: bool
    dataset: DatasetDict
    table: str


def _examples(records: list[dict], scheme: LabelScheme, articles: dict[str, Article]) -> list[dict]:
    records = sorted(records, key=lambda r: (r["article"], r["index"]))
    examples = []
    for record, context in zip(records, previous_sentences(records)):
        article_id, index = record["article"], record["index"]
        article = articles.get(article_id)
        examples.append({
            "id": f"{article_id}:{index}",
            "article": article_id,
            "outlet": article.outlet if article else str(record.get("outlet", "")),
            "date": article.date if article else str(record.get("date", "")),
            "kind": article.kind if article else "imported",
            "event": article.event if article else str(record.get("event", "")),
            "event_family": article.event_family if article else str(record.get("event_family", "")),
            "index": index,
            "text": record["text"],
            "context": context,
            "topics": [t for t in scheme.topics if t in record["topics"]],
            "speaker": record["speaker"],
            "topic_labels": scheme.encode_topics(record["topics"]),
            "speaker_label": scheme.encode_speaker(record["speaker"]),
            # "" = the record carries no source labels (imported data may not); scorers skip those rows.
            "quote": record.get("quote", ""),
            "sources": [{field: s.get(field) for field in SOURCE_FIELDS} for s in record.get("sources") or []],
        })
    return examples


def _stratification_matrix(examples: list[dict], scheme: LabelScheme) -> np.ndarray:
    """Topics, speaker one-hot and a 'no topic' column: what the split should keep balanced."""
    rows = []
    for ex in examples:
        speaker = [0.0] * len(scheme.speakers)
        speaker[ex["speaker_label"]] = 1.0
        rows.append(ex["topic_labels"] + speaker + [float(not ex["topics"])])
    return np.array(rows)


def assign_splits(examples: list[dict], scheme: LabelScheme, config: DataConfig) -> tuple[list[str], list[int]]:
    """Split name and CV fold for every example, whole articles at a time (see train/data/splits.py)."""
    groups = connected_groups([ex["article"] for ex in examples], [ex["text"] for ex in examples])
    y = _stratification_matrix(examples, scheme)
    train_fraction = 1.0 - config.validation_fraction - config.test_fraction
    bins = assign_groups(y, groups, [train_fraction, config.validation_fraction, config.test_fraction], config.seed)
    splits = [SPLITS[b] for b in bins]
    empty = [name for name in SPLITS if name not in splits]
    if empty:
        raise DataError([f"{config.annotations_dir}: only {max(groups) + 1} article group(s), too few to hold out "
                         f"{' and '.join(empty)} by article; label more articles"])
    folds = assign_groups(y, groups, [1.0 / config.n_folds] * config.n_folds, config.seed)
    return splits, folds


def fingerprint_inputs(config: DataConfig) -> str:
    """Hash of everything the build reads, so an unchanged build can be skipped."""
    digest = hashlib.sha256(BUILD_VERSION.encode())
    split_params = {k: getattr(config, k) for k in ("validation_fraction", "test_fraction", "n_folds", "seed")}
    digest.update(json.dumps(split_params, sort_keys=True).encode())
    seeds_file = Path(config.seeds)
    paths = [Path(config.labels), seeds_file, *sorted(Path(config.annotations_dir).glob("*.jsonl"))]
    if seeds_file.is_file():
        for entry in yaml.safe_load(seeds_file.read_text(encoding="utf-8")) or []:
            if isinstance(entry, dict) and "source" in entry:
                paths.append(seeds_file.parent / str(entry["source"]))
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()[:16]


def label_table(dataset: DatasetDict, scheme: LabelScheme) -> str:
    columns = [*SPLITS, "all"]
    counts = {name: Counter() for name in columns}
    for split in SPLITS:
        for row in dataset[split]:
            for key in ["sentences", *[f"topic:{t}" for t in row["topics"]], f"speaker:{row['speaker']}"]:
                counts[split][key] += 1
                counts["all"][key] += 1
            if not row["topics"]:
                counts[split]["topic:(none)"] += 1
                counts["all"]["topic:(none)"] += 1
    rows = ["sentences", *[f"topic:{t}" for t in scheme.topics], "topic:(none)", *[f"speaker:{s}" for s in scheme.speakers]]
    width = max(len(r) for r in rows)
    lines = [f"{'label':<{width}}  " + "  ".join(f"{c:>10}" for c in columns)]
    lines += [f"{r:<{width}}  " + "  ".join(f"{counts[c][r]:>10}" for c in columns) for r in rows]
    return "\n".join(lines)


SPEAKER_FLOOR = 40
TOPIC_FLOOR = 30


def floor_shortfalls(dataset: DatasetDict, scheme: LabelScheme) -> list[str]:
    """Labels with fewer sentences than the corpus floor (every speaker 40, every topic 30), across all splits."""
    speakers, topics = Counter(), Counter()
    for split in SPLITS:
        speakers.update(dataset[split]["speaker"])
        topics.update(t for row in dataset[split]["topics"] for t in row)
    return [f"speaker:{s} {speakers[s]} < {SPEAKER_FLOOR}" for s in scheme.speakers if speakers[s] < SPEAKER_FLOOR] + \
        [f"topic:{t} {topics[t]} < {TOPIC_FLOOR}" for t in scheme.topics if topics[t] < TOPIC_FLOOR]


def _scheme(config: DataConfig) -> LabelScheme:
    try:
        return load_scheme(config.labels)
    except SchemeError as e:
        raise DataError([f"{config.labels}:1: {str(e).split(': ', 1)[-1]}"]) from None


def labelled_examples(config: DataConfig) -> list[dict]:
    """Every labelled sentence as `make data` builds it (context, outlet, labels), in article order, with the
    `path:line` of its label; one validated read, no splits, nothing written."""
    scheme = _scheme(config)
    articles = load_articles(config.seeds)
    records = load_annotations(config.annotations_dir, scheme, articles)
    where = {(r["article"], r["index"]): r["_where"] for r in records}
    return [{**ex, "where": where[(ex["article"], ex["index"])]} for ex in _examples(records, scheme, articles)]


def build_dataset(config: DataConfig, force: bool = False) -> BuildResult:
    """Validate the annotations and write `config.build_dir`; skipped if the inputs are unchanged."""
    scheme = _scheme(config)
    build_dir = Path(config.build_dir)
    fingerprint = fingerprint_inputs(config)
    manifest_path = build_dir / "manifest.json"
    if not force and manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("fingerprint") == fingerprint:
            dataset = load_from_disk(str(build_dir / "dataset"))
            return BuildResult(build_dir, fingerprint, True, dataset, label_table(dataset, scheme))

    articles = load_articles(config.seeds)
    records = load_annotations(config.annotations_dir, scheme, articles)
    examples = _examples(records, scheme, articles)
    splits, folds = assign_splits(examples, scheme, config)
    for example, fold in zip(examples, folds):
        example["fold"] = fold
    dataset = DatasetDict({
        # one type for `sources` in every split: a split whose sources are all unnamed would otherwise infer
        # null columns, and the splits could not be concatenated (cross-validation)
        split: Dataset.from_list([ex for ex, s in zip(examples, splits) if s == split]).cast_column(
            "sources", SOURCES_FEATURE) for split in SPLITS
    })
    table = label_table(dataset, scheme)

    def write(staging: Path) -> None:
        datasets.disable_progress_bars()
        dataset.save_to_disk(str(staging / "dataset"))
        (staging / "folds.json").write_text(json.dumps(
            {"n_folds": config.n_folds, "folds": {ex["id"]: ex["fold"] for ex in examples}}, indent=1), encoding="utf-8")
        (staging / "label_counts.txt").write_text(table + "\n", encoding="utf-8")
        manifest = {"fingerprint": fingerprint, "build_version": BUILD_VERSION, "topics": list(scheme.topics),
                    "speakers": list(scheme.speakers), "sizes": {s: len(dataset[s]) for s in SPLITS}}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")

    write_directory_atomically(build_dir, write)
    return BuildResult(build_dir, fingerprint, False, load_from_disk(str(build_dir / "dataset")), table)


def load_built(config: DataConfig) -> DatasetDict:
    """The built dataset, building it first when missing or stale."""
    return build_dataset(config).dataset
