"""Writing predictions as JSONL, CSV or Parquet, reading them back, and cutting a file back for --resume."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from train.errors import UsageError
from train.prediction.readers import METADATA, Article

FORMATS = ("jsonl", "csv", "parquet")


def output_row(article: Article, sentence: dict) -> dict:
    return {"article": article.id, **article.metadata, **sentence}


SOURCE_COLUMNS = ("source_names", "first_source", "quote")


def source_columns(row: dict) -> dict[str, str]:
    """The flat form of a row's sources (CSV, Parquet): names joined with "; ", the first (main) one, the quote
    kind; empty when the row carries no sources (a tagger loaded with sources=False)."""
    names = [s["name"] for s in row.get("sources") or []]
    return {"source_names": "; ".join(names), "first_source": names[0] if names else "", "quote": row.get("quote", "")}


class _TextWriter:
    """A text output (`self.file`) written and flushed article by article; nothing to do at a chunk's end."""

    def end_chunk(self) -> None:
        pass

    def close(self) -> None:
        self.file.close()


class JsonlWriter(_TextWriter):
    def __init__(self, path: Path, append: bool):
        self.file = path.open("a" if append else "w", encoding="utf-8")

    def write(self, rows: list[dict]) -> None:
        self.file.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        self.file.flush()


class CsvWriter(_TextWriter):
    """Topics joined with ';', one column per score: `topic:<name>`, `speaker:<name>`."""

    def __init__(self, path: Path, topics: list[str], speakers: list[str]):
        self.file = path.open("w", encoding="utf-8", newline="")
        self.columns = ["article", *METADATA, "index", "text", "topics", "speaker", *SOURCE_COLUMNS,
                        *(f"topic:{t}" for t in topics), *(f"speaker:{s}" for s in speakers)]
        self.writer = csv.writer(self.file)
        self.writer.writerow(self.columns)

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            flat = {**row, "topics": ";".join(row["topics"]), **source_columns(row),
                    **{f"topic:{t}": p for t, p in row["topic_scores"].items()},
                    **{f"speaker:{s}": p for s, p in row["speaker_scores"].items()}}
            self.writer.writerow([flat[column] for column in self.columns])
        self.file.flush()


class ParquetWriter:
    """One row group per chunk. A killed run leaves no readable file (the footer is written on close)."""

    def __init__(self, path: Path, topics: list[str], speakers: list[str]):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.schema = pa.schema([
            ("article", pa.string()), *((key, pa.string()) for key in METADATA), ("index", pa.int32()),
            ("text", pa.string()), ("topics", pa.list_(pa.string())),
            ("topic_scores", pa.struct([(t, pa.float32()) for t in topics])),
            ("speaker", pa.string()), ("speaker_scores", pa.struct([(s, pa.float32()) for s in speakers])),
            *((column, pa.string()) for column in SOURCE_COLUMNS),
        ])
        self.writer = pq.ParquetWriter(path, self.schema)
        self.rows: list[dict] = []

    def write(self, rows: list[dict]) -> None:
        self.rows.extend({**row, **source_columns(row)} for row in rows)

    def end_chunk(self) -> None:
        if self.rows:
            self.writer.write_table(self.pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self.end_chunk()
        self.writer.close()


def output_format(out: Path, requested: str | None) -> str:
    if requested:
        return requested
    return {".csv": "csv", ".parquet": "parquet"}.get(out.suffix.lower(), "jsonl")


def read_rows(path: Path, fmt: str) -> Iterator[dict]:
    """The sentence rows of an output file, as written (CSV scores come back as strings)."""
    if fmt == "jsonl":
        with path.open(encoding="utf-8") as lines:
            yield from (json.loads(line) for line in lines if line.strip())
    elif fmt == "csv":
        with path.open(encoding="utf-8", newline="") as file:
            for row in csv.DictReader(file):
                yield {**row, "topics": row["topics"].split(";") if row["topics"] else []}
    else:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches():
            yield from batch.to_pylist()


def prepare_resume(path: Path) -> set[str]:
    """Article ids an earlier run finished; the output is cut back to before its last article.

    A kill can interrupt the write of the last article (or the last line), so that
    article is dropped and tagged again; every article before it is complete.
    """
    if not path.exists():
        return set()
    articles: list[str] = []
    offset = last_article_start = 0
    with path.open("rb") as file:
        lines = file.readlines()
    for number, line in enumerate(lines, start=1):
        try:
            article = json.loads(line)["article"] if line.endswith(b"\n") else None
        except (ValueError, KeyError, TypeError):
            article = None
        if article is None:
            if number < len(lines):
                raise UsageError(f"{path}:{number}: not a prediction line; cannot resume into this file")
            break
        if not articles or article != articles[-1]:
            articles.append(article)
            last_article_start = offset
        offset += len(line)
    with path.open("r+b") as file:
        file.truncate(last_article_start)
    return set(articles[:-1])
