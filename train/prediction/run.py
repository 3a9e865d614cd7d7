"""Batch prediction: tag every article of the inputs and write one row per sentence.

Articles are read lazily and tagged in chunks of a few thousand sentences; each
finished article's lines are written and flushed at once, so memory stays flat
and an interrupted run keeps everything it finished (`--resume` carries on).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from train.data.segment import split_sentences
from train.errors import UsageError
from train.modeling.tagger import Tagger
from train.prediction.readers import Article, Problems, check_inputs, read_articles
from train.prediction.summary import write_summary
from train.prediction.writers import FORMATS, CsvWriter, JsonlWriter, ParquetWriter, output_row, prepare_resume


@dataclass
class RunResult:
    articles: int = 0
    sentences: int = 0
    already_done: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    summary: Path | None = None

    @property
    def skipped(self) -> int:
        return sum(self.problems.values())


def _chunks(articles: Iterator[Article], max_sentences: int) -> Iterator[list[tuple[Article, list[str]]]]:
    chunk, size = [], 0
    for article in articles:
        sentences = split_sentences(article.text)
        chunk.append((article, sentences))
        size += len(sentences)
        if size >= max_sentences:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def predict_files(tagger: Tagger, inputs: list[str], out: Path, fmt: str = "jsonl", resume: bool = False,
                  chunk_sentences: int = 2048, progress: bool = False,
                  report: Callable[[str], None] = tqdm.write, stdin: TextIO | None = None) -> RunResult:
    """Tag every article in `inputs`, appending to `out` article by article, then write the summary."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if resume and fmt != "jsonl":
        raise UsageError(f"--resume needs JSONL output: a {fmt} file cannot be appended to safely")
    check_inputs(inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = prepare_resume(out) if resume else set()
    problems = Problems(report)
    result = RunResult(problems=problems.counts)
    if fmt == "jsonl":
        writer = JsonlWriter(out, append=resume)
    elif fmt == "csv":
        writer = CsvWriter(out, tagger.topics, tagger.speakers)
    else:
        writer = ParquetWriter(out, tagger.topics, tagger.speakers)
    articles = read_articles(inputs, problems, stdin)
    bar = tqdm(unit=" articles", disable=not progress, file=sys.stderr)
    start = time.perf_counter()
    try:
        for chunk in _chunks(_skip_done(articles, done, result), chunk_sentences):
            for (article, sentences), tagged in zip(chunk, tagger.tag_sentences([s for _, s in chunk])):
                if not tagged:
                    problems.add(article.source, "empty", "no sentences")
                    continue
                writer.write([output_row(article, sentence) for sentence in tagged])
                result.articles += 1
                result.sentences += len(tagged)
                bar.update(1)
            writer.end_chunk()
            elapsed = time.perf_counter() - start
            bar.set_postfix_str(f"{result.sentences / elapsed:.0f} sentences/s")
    finally:
        bar.close()
        writer.close()
    result.summary = write_summary(out, fmt, tagger.topics, tagger.speakers)
    return result


def _skip_done(articles: Iterator[Article], done: set[str], result: RunResult) -> Iterator[Article]:
    for article in articles:
        if article.id in done:
            result.already_done += 1
        else:
            yield article


def closing_summary(result: RunResult, out: Path) -> str:
    line = f"{result.articles} articles, {result.sentences} sentences -> {out}"
    if result.already_done:
        line += f" ({result.already_done} articles already there, skipped)"
    if result.skipped:
        kinds = ", ".join(f"{n} {kind}" for kind, n in result.problems.most_common())
        line += f"; {result.skipped} inputs skipped: {kinds}"
    return line + (f"; summary: {result.summary}" if result.summary else "")
