"""`make data`: validate the gold annotations and build the train/validation/test dataset.

Inputs: the label scheme, the seed articles and their metadata, every
`data/annotations/*.jsonl`. Output: `data/build/` with a `datasets.DatasetDict`,
a 5-fold assignment for cross-validation and a manifest holding the inputs'
fingerprint, so an unchanged build is skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import yaml
from datasets import Dataset, DatasetDict, load_from_disk
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold, MultilabelStratifiedShuffleSplit

from train.atomic import write_directory_atomically
from train.config import DataConfig, load_config
from train.errors import UserError, exit_with
from train.labels import LabelScheme, SchemeError, load_scheme
from train.segment import sentences_with_lines

# Bump when the build logic changes so that old builds are not reused.
BUILD_VERSION = "1"
REQUIRED_FIELDS = ("article", "index", "text", "topics", "speaker")
SPLITS = ("train", "validation", "test")


class DataError(UserError):
    """Invalid inputs; each message reads `path:line: what is wrong and how to fix it`."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("\n".join(messages))

    def lines(self) -> list[str]:
        return [*self.messages, f"{len(self.messages)} problem(s); nothing was written"]


@dataclass
class Article:
    id: str
    outlet: str
    date: str
    language: str
    source: Path
    sentences: list[tuple[int, str]]  # (line in the source file, sentence)


@dataclass
class BuildResult:
    path: Path
    fingerprint: str
    skipped: bool
    dataset: DatasetDict
    table: str


def load_articles(seeds_file: str | Path) -> dict[str, Article]:
    seeds_file = Path(seeds_file)
    if not seeds_file.is_file():
        raise DataError([f"{seeds_file}:1: seed metadata file not found; create it with one entry per article"])
    entries = yaml.safe_load(seeds_file.read_text(encoding="utf-8")) or []
    if not isinstance(entries, list):
        raise DataError([f"{seeds_file}:1: expected a list of articles (id, outlet, date, language, source)"])
    articles: dict[str, Article] = {}
    errors = []
    for number, entry in enumerate(entries, start=1):
        where = f"{seeds_file}: entry {number}"
        missing = [k for k in ("id", "outlet", "date", "language", "source") if not isinstance(entry, dict) or k not in entry]
        if missing:
            errors.append(f"{where}: missing {', '.join(missing)}; every article needs id, outlet, date, language, source")
            continue
        article_id = str(entry["id"])
        source = seeds_file.parent / str(entry["source"])
        if article_id in articles:
            errors.append(f"{where}: duplicate article id {article_id!r}; ids must be unique")
        elif not source.is_file():
            errors.append(f"{where}: source file {source} not found; put the article text there")
        else:
            text = source.read_text(encoding="utf-8")
            articles[article_id] = Article(article_id, str(entry["outlet"]), str(entry["date"]), str(entry["language"]),
                                           source, sentences_with_lines(text))
    if errors:
        raise DataError(errors)
    return articles


def _validate_record(record: Any, where: str, scheme: LabelScheme) -> list[str]:
    if not isinstance(record, dict):
        return [f"{where}: expected a JSON object with {', '.join(REQUIRED_FIELDS)}"]
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        return [f"{where}: missing field(s) {', '.join(missing)}; each line needs {', '.join(REQUIRED_FIELDS)}"]
    errors = []
    if not isinstance(record["article"], str) or not record["article"]:
        errors.append(f"{where}: 'article' must be a non-empty string (the article id)")
    if not isinstance(record["index"], int) or isinstance(record["index"], bool) or record["index"] < 0:
        errors.append(f"{where}: 'index' must be a non-negative integer (the sentence's position in the article)")
    if not isinstance(record["text"], str) or not record["text"].strip():
        errors.append(f"{where}: 'text' must be the sentence text")
    if not isinstance(record["topics"], list) or not all(isinstance(t, str) for t in record["topics"]):
        errors.append(f"{where}: 'topics' must be a list of topic ids, e.g. [\"nato\"] or []")
    else:
        for topic in record["topics"]:
            if topic not in scheme.topics:
                errors.append(f"{where}: unknown topic {topic!r}; use one of {', '.join(scheme.topics)}")
        if len(set(record["topics"])) != len(record["topics"]):
            errors.append(f"{where}: a topic is listed twice in {record['topics']}; list each once")
    if record["speaker"] not in scheme.speakers:
        errors.append(f"{where}: unknown speaker {record['speaker']!r}; use exactly one of {', '.join(scheme.speakers)}")
    return errors


def load_annotations(annotations_dir: str | Path, scheme: LabelScheme, articles: dict[str, Article]) -> list[dict]:
    """Read and validate every annotation file; raise DataError listing every problem found."""
    annotations_dir = Path(annotations_dir)
    files = sorted(annotations_dir.glob("*.jsonl"))
    if not files:
        raise DataError([f"{annotations_dir}:1: no *.jsonl annotation files; label the seed articles first"])
    records: list[dict] = []
    errors: list[str] = []
    seen: dict[tuple[str, int], str] = {}
    for path in files:
        for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            where = f"{path}:{line_number}"
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(f"{where}: invalid JSON ({e.msg} at column {e.colno}); write one JSON object per line")
                continue
            problems = _validate_record(record, where, scheme)
            if problems:
                errors.extend(problems)
                # A line with a bad label still covers its sentence: don't also report that sentence unlabelled.
                if isinstance(record, dict) and isinstance(record.get("article"), str) \
                        and isinstance(record.get("index"), int):
                    seen.setdefault((record["article"], record["index"]), where)
                continue
            key = (record["article"], record["index"])
            if key in seen:
                errors.append(f"{where}: duplicate sentence article={key[0]!r} index={key[1]}, already labelled at {seen[key]}; keep one")
                continue
            seen[key] = where
            article = articles.get(record["article"])
            if article is not None:
                if record["index"] >= len(article.sentences):
                    errors.append(f"{where}: index {record['index']} is past the end of {article.source} "
                                  f"({len(article.sentences)} sentences); check the article id and index")
                    continue
                expected = article.sentences[record["index"]][1]
                if record["text"] != expected:
                    errors.append(f"{where}: text does not match sentence {record['index']} of {article.source} "
                                  f"as split by the segmenter ({expected[:60]!r}); copy it from "
                                  f"`python -m train.data --template {article.id}`")
                    continue
            records.append({**record, "_where": where})
    for article in articles.values():
        for index, (source_line, sentence) in enumerate(article.sentences):
            if (article.id, index) not in seen:
                errors.append(f"{article.source}:{source_line}: sentence {index} of article {article.id} has no label "
                              f"({sentence[:60]!r}); add it to {annotations_dir}/{article.id}.jsonl")
    by_article: dict[str, list[int]] = {}
    for record in records:
        by_article.setdefault(record["article"], []).append(record["index"])
    for article_id, indices in by_article.items():
        missing = sorted(set(range(max(indices) + 1)) - set(indices))
        if missing and article_id not in articles:
            errors.append(f"{annotations_dir}: article {article_id!r} has gaps in its sentence indices {missing[:10]}; "
                          "label every sentence so the previous-sentence context is right")
    if errors:
        raise DataError(errors)
    return records


def _examples(records: list[dict], scheme: LabelScheme, articles: dict[str, Article]) -> list[dict]:
    by_key = {(r["article"], r["index"]): r for r in records}
    examples = []
    for (article_id, index), record in sorted(by_key.items()):
        previous = by_key.get((article_id, index - 1))
        article = articles.get(article_id)
        examples.append({
            "id": f"{article_id}:{index}",
            "article": article_id,
            "outlet": article.outlet if article else str(record.get("outlet", "")),
            "date": article.date if article else str(record.get("date", "")),
            "index": index,
            "text": record["text"],
            "context": previous["text"] if previous else "",
            "topics": [t for t in scheme.topics if t in record["topics"]],
            "speaker": record["speaker"],
            "topic_labels": scheme.encode_topics(record["topics"]),
            "speaker_label": scheme.encode_speaker(record["speaker"]),
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
    """Split name and CV fold for every example.

    Identical texts (the same boilerplate on two pages) are grouped so that one
    text never lands on both sides of a split.
    """
    groups: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault(ex["text"], []).append(i)
    representatives = [members[0] for members in groups.values()]
    y = _stratification_matrix([examples[i] for i in representatives], scheme)
    positions = np.arange(len(representatives))

    held_out = config.validation_fraction + config.test_fraction
    outer = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=held_out, random_state=config.seed)
    train_pos, held_pos = next(outer.split(positions, y))
    inner = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=config.test_fraction / held_out,
                                             random_state=config.seed)
    validation_rel, test_rel = next(inner.split(held_pos, y[held_pos]))
    group_split = {}
    for pos in train_pos:
        group_split[pos] = "train"
    for pos in held_pos[validation_rel]:
        group_split[pos] = "validation"
    for pos in held_pos[test_rel]:
        group_split[pos] = "test"

    kfold = MultilabelStratifiedKFold(n_splits=config.n_folds, shuffle=True, random_state=config.seed)
    group_fold = {}
    for fold, (_, fold_pos) in enumerate(kfold.split(positions, y)):
        for pos in fold_pos:
            group_fold[pos] = fold

    splits, folds = [""] * len(examples), [0] * len(examples)
    for pos, members in enumerate(groups.values()):
        for i in members:
            splits[i], folds[i] = group_split[pos], group_fold[pos]
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


def build_dataset(config: DataConfig, force: bool = False) -> BuildResult:
    """Validate the annotations and write `config.build_dir`; skipped if the inputs are unchanged."""
    try:
        scheme = load_scheme(config.labels)
    except SchemeError as e:
        raise DataError([f"{config.labels}:1: {str(e).split(': ', 1)[-1]}"]) from None
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
        split: Dataset.from_list([ex for ex, s in zip(examples, splits) if s == split]) for split in SPLITS
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


def annotation_template(article: Article) -> str:
    """Unlabelled JSONL lines for a new seed article, to be filled in by an annotator."""
    return "".join(json.dumps({"article": article.id, "index": i, "text": text, "topics": [], "speaker": "none"},
                              ensure_ascii=False) + "\n" for i, (_, text) in enumerate(article.sentences))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate annotations and build data/build/.")
    parser.add_argument("--config", default="configs/cpu.yaml")
    parser.add_argument("--force", action="store_true", help="rebuild even if the inputs are unchanged")
    parser.add_argument("--template", metavar="ARTICLE_ID",
                        help="print unlabelled JSONL lines for a seed article and exit")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. data.seed=7")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides).data
        if args.template:
            articles = load_articles(config.seeds)
            if args.template not in articles:
                print(f"{config.seeds}: no article {args.template!r}; known: {', '.join(articles)}", file=sys.stderr)
                return 2
            sys.stdout.write(annotation_template(articles[args.template]))
            return 0
        result = build_dataset(config, force=args.force)
    except UserError as e:
        return exit_with(e)
    state = "unchanged, build skipped" if result.skipped else "built"
    print(f"{result.path}: {state} (fingerprint {result.fingerprint})")
    print(result.table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
