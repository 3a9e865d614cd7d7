"""Batch prediction: tag every article of the inputs and write one row per sentence.

Articles are read lazily and tagged in chunks of a few thousand sentences; each
finished article's lines are written and flushed at once, so memory stays flat
and an interrupted run keeps everything it finished (`--resume` carries on).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from train.atomic import write_file_atomically
from train.data.segment import split_sentences
from train.errors import UsageError
from train.modeling.tagger import Tagger
from train.prediction.readers import INPUT_SUFFIXES, Article, Problems, check_inputs, read_articles
from train.prediction.summary import summary_path, write_summary
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


def chunk_articles(articles: Iterator[Article], max_sentences: int) -> Iterator[list[tuple[Article, list[str]]]]:
    """Segmented articles in chunks of about `max_sentences` sentences, so memory stays flat on any input."""
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


def check_output(inputs: list[str], out: Path, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse an output that is an input, or that exists and was not named for --resume or --overwrite."""
    if resume and overwrite:
        raise UsageError("--resume continues the output and --overwrite replaces it: give one of them")
    target = out.resolve()
    if any(name != "-" and Path(name).resolve() == target for name in inputs):
        raise UsageError(f"--out {out} is also an input; write the predictions to another file")
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; give a file name such as {out / 'predictions.jsonl'}")
    if out.exists() and not (resume or overwrite):
        raise UsageError(f"{out} already exists: pass --overwrite to replace it, or --resume to continue it")


def predict_files(tagger: Tagger, inputs: list[str], out: Path, fmt: str = "jsonl", resume: bool = False,
                  overwrite: bool = False, chunk_sentences: int = 2048, progress: bool = False,
                  report: Callable[[str], None] | None = None, stdin: TextIO | None = None) -> RunResult:
    """Tag every article in `inputs` article by article, then write the summary.

    A resumed run appends to `out`; any other run writes a temporary file that replaces `out`
    only once complete, so a killed or failed run leaves an earlier output as it was.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if resume and fmt != "jsonl":
        raise UsageError(f"--resume needs JSONL output: a {fmt} file cannot be appended to safely")
    check_inputs(inputs)
    check_output(inputs, out, resume, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    problems = Problems(report or _report_on_stderr)
    result = RunResult(problems=problems.counts)

    def tag_into(path: Path) -> None:
        done = prepare_resume(path) if resume else set()
        outputs = frozenset(p.resolve() for p in (out, path, summary_path(out)))
        articles = _skip_done(read_articles(inputs, problems, stdin, outputs), done, result)
        _tag_articles(tagger, articles, _open_writer(path, fmt, tagger, append=resume), result, problems,
                      chunk_sentences, progress)
        if not result.articles and not result.already_done:
            raise UsageError(f"no article to tag in {', '.join(inputs)} ({result.skipped} inputs skipped; inputs are "
                             f"{', '.join(INPUT_SUFFIXES)} files, directories of them, or -); nothing written to {out}")

    if resume:
        tag_into(out)
    else:
        write_file_atomically(out, tag_into)
    result.summary = write_summary(out, fmt, tagger.topics, tagger.speakers)
    return result


def _report_on_stderr(line: str) -> None:
    tqdm.write(line, file=sys.stderr)  # above the progress bar, which stays at the bottom


def _open_writer(path: Path, fmt: str, tagger: Tagger, append: bool) -> JsonlWriter | CsvWriter | ParquetWriter:
    if fmt == "jsonl":
        return JsonlWriter(path, append=append)
    if fmt == "csv":
        return CsvWriter(path, tagger.topics, tagger.speakers)
    return ParquetWriter(path, tagger.topics, tagger.speakers)


def _tag_articles(tagger: Tagger, articles: Iterator[Article], writer, result: RunResult, problems: Problems,
                  chunk_sentences: int, progress: bool) -> None:
    """Tag chunk by chunk; the bar counts sentences batch by batch, so a huge article shows progress too."""
    bar = tqdm(unit=" sentences", disable=not progress, file=sys.stderr)
    try:
        for chunk in chunk_articles(articles, chunk_sentences):
            tagged_chunk = tagger.tag_sentences([sentences for _, sentences in chunk], progress=bar.update,
                                                dates=[article.metadata.get("date") for article, _ in chunk])
            for (article, _), tagged in zip(chunk, tagged_chunk):
                if not tagged:
                    problems.add(article.source, "empty", "no sentences")
                    continue
                writer.write([output_row(article, sentence) for sentence in tagged])
                result.articles += 1
                result.sentences += len(tagged)
            writer.end_chunk()
            bar.set_postfix_str(f"{result.articles} articles")
    finally:
        bar.close()
        writer.close()


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
