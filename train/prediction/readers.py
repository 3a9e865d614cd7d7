"""Reading articles to tag: .txt, .html, .jsonl, .parquet files, directories and stdin, lazily.

Bad input is reported once (file and line) and counted, never fatal: one broken
file in a crawl of thousands should not stop the run.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bs4.dammit import EncodingDetector
from charset_normalizer import from_bytes

from train.errors import UsageError
from train.prediction.html_text import html_to_text

INPUT_SUFFIXES = (".txt", ".html", ".htm", ".jsonl", ".parquet")
METADATA = ("outlet", "date", "url")
# Below this share of Cyrillic among letters an article is not Russian and is skipped:
# the model has only seen Russian, so its labels there would be noise.
MIN_CYRILLIC_SHARE = 0.3
LANGUAGE_SAMPLE_CHARS = 100_000
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_LETTER = re.compile(r"[^\W\d_]")


@dataclass
class Article:
    id: str
    text: str
    source: str  # where a problem with it is reported: a file, or file:line
    metadata: dict[str, str | None] = field(default_factory=dict)


class Problems:
    """Bad input, each reported once as it is met and counted by kind for the closing summary."""

    def __init__(self, report: Callable[[str], None]):
        self.report = report
        self.counts: Counter[str] = Counter()

    def add(self, source: str, kind: str, detail: str = "") -> None:
        self.counts[kind] += 1
        self.report(f"skipped {source}: {kind}" + (f" ({detail})" if detail else ""))

    def note(self, source: str, message: str) -> None:
        """Something the user should know about an input that was still read."""
        self.report(f"note: {source}: {message}")


def check_inputs(inputs: list[str]) -> None:
    missing = [name for name in inputs if name != "-" and not Path(name).exists()]
    if missing:
        raise UsageError(f"no such input: {', '.join(missing)}")


def read_articles(inputs: list[str], problems: Problems, stdin: TextIO | None = None,
                  outputs: frozenset[Path] = frozenset()) -> Iterator[Article]:
    """Articles from files, directories (recursively: .txt, .html, .htm, .jsonl, .parquet) and '-' (stdin), lazily.

    On stdin each line is one article: a JSON object like a .jsonl line, or plain text. Files in
    `outputs` (resolved paths: the run's own output, its temporary file and summary) are never read,
    so an output inside an input directory is not fed back in as it grows. An article's id does not
    depend on how its path was typed: it is the resolved path (`path:line` for a JSONL line without id,
    `path:row` for a Parquet row without one).
    """
    for name in inputs:
        if name == "-":
            lines = (line.encode("utf-8", "surrogateescape") for line in (stdin or sys.stdin))
            yield from _read_lines(lines, "stdin", "stdin", problems, plain_text=True)
            continue
        path = Path(name)
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES) \
            if path.is_dir() else [path]
        for file in files:
            if file.resolve() not in outputs:
                yield from _read_file(file, problems)


def _read_file(path: Path, problems: Problems) -> Iterator[Article]:
    identity = str(path.resolve())
    try:
        if path.suffix.lower() == ".jsonl":
            with path.open("rb") as lines:
                yield from _read_lines(lines, str(path), identity, problems, plain_text=False)
            return
        if path.suffix.lower() == ".parquet":
            yield from _read_parquet(path, identity, problems)
            return
        data = path.read_bytes()
    except OSError as e:
        problems.add(str(path), "unreadable", e.strerror or str(e))
        return
    if b"\0" in data[:8192]:
        problems.add(str(path), "binary file")
        return
    html = path.suffix.lower() in (".html", ".htm")
    text = _decode(data, html, path, problems)
    if text is None:
        problems.add(str(path), "not UTF-8", "and no other encoding could be detected; re-save it as UTF-8")
        return
    if html:
        text = html_to_text(text)
    article = Article(id=identity, text=text, source=str(path), metadata=dict.fromkeys(METADATA))
    if _acceptable(article, problems):
        yield article


def _decode(data: bytes, html: bool, path: Path, problems: Problems) -> str | None:
    """UTF-8 (a BOM is dropped), else the charset an HTML page declares, else the one charset-normalizer detects.

    Many Russian sites and older Windows files use windows-1251; a detected encoding is said, since it is a guess.
    """
    encodings = ["utf-8-sig"]
    if html and (declared := EncodingDetector.find_declared_encoding(data, is_html=True)):
        encodings.append(declared)
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    detected = from_bytes(data).best()
    if detected is None:
        return None
    problems.note(str(path), f"not UTF-8; read as {detected.encoding} (detected). Re-save it as UTF-8 if that is wrong")
    return str(detected)


def _read_lines(lines: Iterable[bytes], name: str, identity: str, problems: Problems,
                plain_text: bool) -> Iterator[Article]:
    for number, raw in enumerate(lines, start=1):
        source = f"{name}:{number}"
        if b"\0" in raw:
            problems.add(source, "binary data")
            continue
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
        except UnicodeDecodeError:
            problems.add(source, "not UTF-8", "JSON lines must be UTF-8; re-save the file as UTF-8")
            continue
        if not line:
            problems.add(source, "empty line")
            continue
        if plain_text and not line.startswith("{"):
            article = Article(id=f"{identity}:{number}", text=line, source=source, metadata=dict.fromkeys(METADATA))
        else:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                problems.add(source, "invalid JSON", e.msg)
                continue
            if isinstance(record, dict) and {"topic_scores", "speaker_scores"} <= record.keys():
                problems.add(name, "a prediction output", "its lines are tagged sentences, not articles")
                return
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                problems.add(source, "no 'text' field")
                continue
            article = Article(id=str(record.get("id") or f"{identity}:{number}"), text=record["text"], source=source,
                              metadata={key: record.get(key) for key in METADATA})
        if _acceptable(article, problems):
            yield article


def _read_parquet(path: Path, identity: str, problems: Problems) -> Iterator[Article]:
    """A dataset with a `text` column and optional `id`, `outlet`, `date`, `url` columns, batch by batch."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        names = set(file.schema_arrow.names)
        if {"topic_scores", "speaker_scores"} <= names:
            problems.add(str(path), "a prediction output", "its rows are tagged sentences, not articles")
            return
        if "text" not in names:
            problems.add(str(path), "no 'text' column")
            return
        columns = [name for name in ("id", "text", *METADATA) if name in names]
        number = 0
        for batch in file.iter_batches(columns=columns):
            for number, record in enumerate(batch.to_pylist(), start=number + 1):
                source = f"{path}: row {number}"
                if not isinstance(record["text"], str):
                    problems.add(source, "no 'text' field")
                    continue
                metadata = {key: None if record.get(key) is None else str(record[key]) for key in METADATA}
                article = Article(id=str(record.get("id") or f"{identity}:{number}"), text=record["text"],
                                  source=source, metadata=metadata)
                if _acceptable(article, problems):
                    yield article
    except (OSError, pa.ArrowException) as e:
        problems.add(str(path), "unreadable", str(e))


def cyrillic_share(text: str) -> float:
    sample = text[:LANGUAGE_SAMPLE_CHARS]
    letters = len(_LETTER.findall(sample))
    return len(_CYRILLIC.findall(sample)) / letters if letters else 0.0


def _acceptable(article: Article, problems: Problems) -> bool:
    if not article.text.strip():
        problems.add(article.source, "empty")
        return False
    share = cyrillic_share(article.text)
    if share < MIN_CYRILLIC_SHARE:
        problems.add(article.source, "not Russian", f"{share:.0%} Cyrillic letters")
        return False
    return True
