"""Seed articles and gold annotations: the one validator of the annotation format.

Every reader of annotation-format records (`make data`, `evaluate --data`, label
import) goes through `validate_record`, so a file accepted by one is accepted by all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from train.data.scheme import LabelScheme
from train.data.segment import sentences_with_lines
from train.errors import UserError
from train.sources.schema import QUOTE_KINDS, source_problems

REQUIRED_FIELDS = ("article", "index", "text", "topics", "speaker")
ARTICLE_FIELDS = ("id", "outlet", "date", "language", "source", "kind")
# seed: scraped pages the project began with; authored: written for the corpus (facts from public
# coverage, sentences ours); imported: labelled elsewhere and dropped into data/annotations/.
SOURCE_KINDS = ("seed", "authored", "imported")


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
    kind: str = "seed"
    event: str = ""
    outlet_voice: str = ""
    event_family: str = ""  # events held out together in leave-event-out cross-validation


def read_lines(path: Path) -> list[str]:
    """A text file's lines; a file that is not UTF-8 is a DataError naming the line, not a traceback."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise DataError([f"{path}:{line}: not UTF-8 (byte {data[e.start]:#x}); re-save the file as UTF-8"]) from None


def load_articles(seeds_file: str | Path) -> dict[str, Article]:
    seeds_file = Path(seeds_file)
    if not seeds_file.is_file():
        raise DataError([f"{seeds_file}:1: seed metadata file not found; create it with one entry per article"])
    try:
        entries = yaml.safe_load("\n".join(read_lines(seeds_file))) or []
    except yaml.YAMLError as e:
        line = e.problem_mark.line + 1 if getattr(e, "problem_mark", None) else 1
        raise DataError([f"{seeds_file}:{line}: not valid YAML ({getattr(e, 'problem', e)}); fix the entry"]) from None
    if not isinstance(entries, list):
        raise DataError([f"{seeds_file}:1: expected a list of articles (id, outlet, date, language, source)"])
    articles: dict[str, Article] = {}
    errors = []
    for number, entry in enumerate(entries, start=1):
        where = f"{seeds_file}: entry {number}"
        missing = [k for k in ARTICLE_FIELDS if not isinstance(entry, dict) or k not in entry]
        if missing:
            errors.append(f"{where}: missing {', '.join(missing)}; every article needs {', '.join(ARTICLE_FIELDS)}")
            continue
        if entry["kind"] not in SOURCE_KINDS[:2]:
            errors.append(f"{where}: kind {entry['kind']!r} must be seed or authored (imported data has no seed entry)")
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
                                           source, sentences_with_lines(text), str(entry["kind"]),
                                           str(entry.get("event", "")), str(entry.get("outlet_voice", "")),
                                           str(entry.get("event_family", "")))
    if errors:
        raise DataError(errors)
    return articles


def validate_record(record: Any, where: str, scheme: LabelScheme) -> list[str]:
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
    if "context" in record and not isinstance(record["context"], str):
        errors.append(f"{where}: 'context' must be the previous sentence's text (\"\" for the first sentence)")
    if record["speaker"] not in scheme.speakers:
        errors.append(f"{where}: unknown speaker {record['speaker']!r}; use exactly one of {', '.join(scheme.speakers)}")
    if "sources" in record or "quote" in record:
        errors.extend(_source_errors(record, where))
    return errors


def _source_errors(record: dict, where: str) -> list[str]:
    """The optional `sources` and `quote` fields (data/GUIDELINES.md §9): both or neither, checked together."""
    if "sources" not in record or "quote" not in record:
        return [f"{where}: 'sources' and 'quote' go together; add the missing one (sources [] and quote \"none\" "
                "when the sentence reports no statement)"]
    sources, quote = record["sources"], record["quote"]
    if quote not in QUOTE_KINDS:
        return [f"{where}: quote {quote!r} must be one of {', '.join(QUOTE_KINDS)}"]
    if not isinstance(sources, list):
        return [f"{where}: 'sources' must be a list of source objects, [] when there is none"]
    text = record["text"] if isinstance(record["text"], str) else ""
    errors = [e for source in sources for e in source_problems(source, text, where)]
    if not errors and (quote == "none") != (not sources):
        errors.append(f"{where}: quote {quote!r} with {len(sources)} source(s); a sentence has quote \"none\" "
                      "exactly when it has no sources")
    names = [s["name"] for s in sources if isinstance(s, dict)]
    if len(set(names)) != len(names):
        errors.append(f"{where}: a source is listed twice in {names}; list each name once")
    return errors


def parse_lines(path: Path) -> Iterator[tuple[str, Any, str | None]]:
    """(`path:line`, the parsed JSON or None, the JSON error or None) for every non-empty line of a JSONL file."""
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            yield where, json.loads(line), None
        except json.JSONDecodeError as e:
            yield where, None, f"{where}: invalid JSON ({e.msg} at column {e.colno}); write one JSON object per line"


def read_records(path: Path, scheme: LabelScheme) -> tuple[list[tuple[str, dict]], list[str]]:
    """(valid records with their `path:line`, every problem) of one annotation-format file; duplicates are problems."""
    records, errors, seen = [], [], {}
    for where, record, json_error in parse_lines(path):
        problems = [json_error] if json_error else validate_record(record, where, scheme)
        if problems:
            errors.extend(problems)
            continue
        key = (record["article"], record["index"])
        if key in seen:
            errors.append(f"{where}: duplicate sentence article={key[0]!r} index={key[1]}, already labelled at "
                          f"{seen[key]}; keep one")
            continue
        seen[key] = where
        records.append((where, record))
    return records, errors


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
        for where, record, json_error in parse_lines(path):
            if json_error:
                errors.append(json_error)
                continue
            problems = validate_record(record, where, scheme)
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
                                  f"`python -m train.cli.data --template {article.id}`")
                    continue
            records.append({**record, "_where": where})
    for article in articles.values():
        for index, (source_line, sentence) in enumerate(article.sentences):
            if (article.id, index) not in seen:
                errors.append(f"{article.source}:{source_line}: sentence {index} of article {article.id} has no label "
                              f"({sentence[:60]!r}); add it to {annotations_dir}/{article.id}.jsonl")
    by_article: dict[str, list[dict]] = {}
    for record in records:
        by_article.setdefault(record["article"], []).append(record)
    for article_id, article_records in by_article.items():
        indices = {r["index"] for r in article_records}
        missing = sorted(set(range(max(indices) + 1)) - indices)
        # A partially labelled article is fine when each record carries its context itself.
        without_context = [r["_where"] for r in article_records if "context" not in r]
        if missing and article_id not in articles and without_context:
            errors.append(f"{without_context[0]}: article {article_id!r} has gaps in its sentence indices "
                          f"{missing[:10]}; label every sentence, or give each of its records a 'context' field "
                          "(the previous sentence) so the model still sees it")
    if errors:
        raise DataError(errors)
    return records


def annotation_template(article: Article) -> str:
    """Unlabelled JSONL lines for a new seed article, to be filled in by an annotator."""
    return "".join(json.dumps({"article": article.id, "index": i, "text": text, "topics": [], "speaker": "none"},
                              ensure_ascii=False) + "\n" for i, (_, text) in enumerate(article.sentences))
