"""Tag new articles: every sentence gets topics and the speaker whose position it reports.

    python -m train.predict [--model models/<run>] INPUT... --out predictions.jsonl

Articles are read lazily and tagged in chunks of a few thousand sentences; each
finished article's lines are written and flushed at once, so memory stays flat
and an interrupted run keeps everything it finished (`--resume` carries on).
Exit status: 0 all articles tagged, 1 some input skipped (each reported once on
stderr and counted at the end), 2 usage error (bad --model, missing input, ...).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import torch
from bs4.dammit import EncodingDetector
from tqdm import tqdm
from transformers.utils import logging as transformers_logging

from train.checkpoint import load_checkpoint, resolve_model_path, write_json
from train.errors import UserError, exit_with
from train.html_text import html_to_text
from train.inference import predict_probabilities
from train.metrics import apply_thresholds
from train.segment import split_sentences

INPUT_SUFFIXES = (".txt", ".html", ".htm", ".jsonl")
METADATA = ("outlet", "date", "url")
FORMATS = ("jsonl", "csv", "parquet")
# Below this share of Cyrillic among letters an article is not Russian and is skipped:
# the model has only seen Russian, so its labels there would be noise.
MIN_CYRILLIC_SHARE = 0.3
LANGUAGE_SAMPLE_CHARS = 100_000
SCORE_DECIMALS = 4
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_LETTER = re.compile(r"[^\W\d_]")


class UsageError(UserError):
    """A command line that cannot run at all (exit status 2)."""


# ---------------------------------------------------------------- the model

def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantization of the encoder's Linear layers (CPU); the two small heads stay fp32."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao, still works
        model.bert = torch.ao.quantization.quantize_dynamic(model.bert, {torch.nn.Linear}, dtype=torch.qint8)
    return model


class Tagger:
    """A loaded checkpoint that tags articles: `Tagger.from_pretrained(path).predict(texts)`."""

    def __init__(self, model, tokenizer, batch_size: int = 64):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.topics: list[str] = list(model.config.topics)
        self.speakers: list[str] = list(model.config.speakers)
        self.thresholds = np.asarray(model.config.topic_thresholds, dtype=np.float32)

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str | None = None, int8: bool = False,
                        num_threads: int | None = None, batch_size: int = 64) -> Tagger:
        """Load a checkpoint (default: models/latest): fp32 on CPU, int8 on request; bf16 on a GPU."""
        if num_threads:
            torch.set_num_threads(num_threads)
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if int8 and device.type != "cpu":
            raise UsageError("--int8 runs on CPU only; on a GPU the model runs in bf16")
        model, tokenizer = load_checkpoint(resolve_model_path(path), device)
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            model = model.to(torch.bfloat16)
        if int8:
            model = quantize_int8(model)
        return cls(model, tokenizer, batch_size)

    def predict(self, texts: list[str] | str) -> list[list[dict]]:
        """One list of sentence dicts per article (a single string is one article)."""
        articles = [texts] if isinstance(texts, str) else texts
        return self.tag_sentences([split_sentences(text) for text in articles])

    def tag_sentences(self, articles: list[list[str]]) -> list[list[dict]]:
        """Tag already segmented articles; each sentence's context is the previous sentence of its article."""
        texts = [sentence for sentences in articles for sentence in sentences]
        contexts = [sentences[i - 1] if i else "" for sentences in articles for i in range(len(sentences))]
        topic_probs, speaker_probs = predict_probabilities(self.model, self.tokenizer, texts, contexts,
                                                           self.batch_size)
        topic_on = apply_thresholds(topic_probs, self.thresholds)
        speaker_ids = speaker_probs.argmax(axis=1)
        results, row = [], 0
        for sentences in articles:
            tagged = []
            for index, text in enumerate(sentences):
                tagged.append({
                    "index": index,
                    "text": text,
                    "topics": [t for t, on in zip(self.topics, topic_on[row]) if on],
                    "topic_scores": _scores(self.topics, topic_probs[row]),
                    "speaker": self.speakers[speaker_ids[row]],
                    "speaker_scores": _scores(self.speakers, speaker_probs[row]),
                })
                row += 1
            results.append(tagged)
        return results


def _scores(labels: list[str], probabilities: np.ndarray) -> dict[str, float]:
    return {label: round(float(p), SCORE_DECIMALS) for label, p in zip(labels, probabilities)}


# ---------------------------------------------------------------- reading input

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


def check_inputs(inputs: list[str]) -> None:
    missing = [name for name in inputs if name != "-" and not Path(name).exists()]
    if missing:
        raise UsageError(f"no such input: {', '.join(missing)}")


def read_articles(inputs: list[str], problems: Problems, stdin: TextIO | None = None) -> Iterator[Article]:
    """Articles from files, directories (recursively: .txt, .html, .htm, .jsonl) and '-' (stdin), lazily.

    On stdin each line is one article: a JSON object like a .jsonl line, or plain text.
    """
    for name in inputs:
        if name == "-":
            lines = (line.encode("utf-8", "surrogateescape") for line in (stdin or sys.stdin))
            yield from _read_lines(lines, "stdin", problems, plain_text=True)
            continue
        path = Path(name)
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES) \
            if path.is_dir() else [path]
        for file in files:
            yield from _read_file(file, problems)


def _read_file(path: Path, problems: Problems) -> Iterator[Article]:
    try:
        if path.suffix.lower() == ".jsonl":
            with path.open("rb") as lines:
                yield from _read_lines(lines, str(path), problems, plain_text=False)
            return
        data = path.read_bytes()
    except OSError as e:
        problems.add(str(path), "unreadable", e.strerror or str(e))
        return
    if b"\0" in data[:8192]:
        problems.add(str(path), "binary file")
        return
    text = _decode(data, html=path.suffix.lower() in (".html", ".htm"))
    if text is None:
        problems.add(str(path), "not UTF-8")
        return
    if path.suffix.lower() in (".html", ".htm"):
        text = html_to_text(text)
    article = Article(id=str(path), text=text, source=str(path), metadata=dict.fromkeys(METADATA))
    if _acceptable(article, problems):
        yield article


def _decode(data: bytes, html: bool) -> str | None:
    """UTF-8 (a BOM is dropped); an HTML page may declare another charset, as many Russian sites use windows-1251."""
    encodings = ["utf-8-sig"]
    if html and (declared := EncodingDetector.find_declared_encoding(data, is_html=True)):
        encodings.append(declared)
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return None


def _read_lines(lines: Iterable[bytes], name: str, problems: Problems, plain_text: bool) -> Iterator[Article]:
    for number, raw in enumerate(lines, start=1):
        source = f"{name}:{number}"
        if b"\0" in raw:
            problems.add(source, "binary data")
            continue
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
        except UnicodeDecodeError:
            problems.add(source, "not UTF-8")
            continue
        if not line:
            problems.add(source, "empty line")
            continue
        if plain_text and not line.startswith("{"):
            article = Article(id=source, text=line, source=source, metadata=dict.fromkeys(METADATA))
        else:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                problems.add(source, "invalid JSON", e.msg)
                continue
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                problems.add(source, "no 'text' field")
                continue
            article = Article(id=str(record.get("id") or source), text=record["text"], source=source,
                              metadata={key: record.get(key) for key in METADATA})
        if _acceptable(article, problems):
            yield article


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


# ---------------------------------------------------------------- writing output

def output_row(article: Article, sentence: dict) -> dict:
    return {"article": article.id, **article.metadata, **sentence}


class JsonlWriter:
    def __init__(self, path: Path, append: bool):
        self.file = path.open("a" if append else "w", encoding="utf-8")

    def write(self, rows: list[dict]) -> None:
        self.file.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        self.file.flush()

    def end_chunk(self) -> None:
        pass

    def close(self) -> None:
        self.file.close()


class CsvWriter:
    """Topics joined with ';', one column per score: `topic:<name>`, `speaker:<name>`."""

    def __init__(self, path: Path, topics: list[str], speakers: list[str]):
        self.file = path.open("w", encoding="utf-8", newline="")
        self.columns = ["article", *METADATA, "index", "text", "topics", "speaker",
                        *(f"topic:{t}" for t in topics), *(f"speaker:{s}" for s in speakers)]
        self.writer = csv.writer(self.file)
        self.writer.writerow(self.columns)

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            flat = {**row, "topics": ";".join(row["topics"]),
                    **{f"topic:{t}": p for t, p in row["topic_scores"].items()},
                    **{f"speaker:{s}": p for s, p in row["speaker_scores"].items()}}
            self.writer.writerow([flat[column] for column in self.columns])
        self.file.flush()

    def end_chunk(self) -> None:
        pass

    def close(self) -> None:
        self.file.close()


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
        ])
        self.writer = pq.ParquetWriter(path, self.schema)
        self.rows: list[dict] = []

    def write(self, rows: list[dict]) -> None:
        self.rows.extend(rows)

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


# ---------------------------------------------------------------- summary

def _empty_group(topics: list[str], speakers: list[str]) -> dict:
    return {"sentences": 0, "no_topic": 0, "topics": dict.fromkeys(topics, 0), "speakers": dict.fromkeys(speakers, 0),
            "topic_by_speaker": {t: dict.fromkeys(speakers, 0) for t in topics}}


def _count(group: dict, row: dict) -> None:
    group["sentences"] += 1
    group["speakers"][row["speaker"]] += 1
    group["no_topic"] += not row["topics"]
    for topic in row["topics"]:
        group["topics"][topic] += 1
        group["topic_by_speaker"][topic][row["speaker"]] += 1


def summarize(rows: Iterable[dict], topics: list[str], speakers: list[str]) -> dict:
    """Sentence counts by topic, by speaker and topic x speaker: overall, per outlet and per article."""
    total = {"articles": 0, **_empty_group(topics, speakers)}
    by_outlet: dict[str, dict] = {}
    by_article: dict[str, dict] = {}
    for row in rows:
        outlet = row.get("outlet") or "unknown"
        if row["article"] not in by_article:
            by_article[row["article"]] = {"outlet": outlet, **_empty_group(topics, speakers)}
            by_outlet.setdefault(outlet, {"articles": 0, **_empty_group(topics, speakers)})["articles"] += 1
            total["articles"] += 1
        for group in (total, by_outlet[outlet], by_article[row["article"]]):
            _count(group, row)
    return {"total": total, "by_outlet": by_outlet, "by_article": by_article}


def summary_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.summary.json")


def write_summary(out: Path, fmt: str, topics: list[str], speakers: list[str]) -> Path:
    """Recomputed from the whole output file (so it covers resumed runs too), written atomically."""
    path = summary_path(out)
    summary = {"output": str(out), **summarize(read_rows(out, fmt), topics, speakers)}
    write_json(path, summary)
    return path


# ---------------------------------------------------------------- the run

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="a .txt/.html article, a .jsonl file (text, optional id/outlet/date/url), "
                             "a directory (recursive), or - for stdin (one article or JSON object per line)")
    parser.add_argument("--out", type=Path, default=Path("predictions.jsonl"), help="output file")
    parser.add_argument("--model", help="checkpoint directory (default: models/latest)")
    parser.add_argument("--format", choices=FORMATS, help="default: from the --out suffix, else jsonl")
    parser.add_argument("--resume", action="store_true", help="skip articles already in --out (JSONL only)")
    parser.add_argument("--int8", action="store_true", help="int8 dynamic quantization (CPU)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk-sentences", type=int, default=2048,
                        help="sentences tagged together; a kill loses at most this chunk")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        check_inputs(args.inputs)
        fmt = output_format(args.out, args.format)
        tagger = Tagger.from_pretrained(args.model, device=args.device, int8=args.int8, num_threads=args.threads,
                                        batch_size=args.batch_size)
        result = predict_files(tagger, args.inputs, args.out, fmt, resume=args.resume,
                               chunk_sentences=args.chunk_sentences, progress=not args.quiet)
    except UserError as e:
        return exit_with(e)
    print(closing_summary(result, args.out), file=sys.stderr)
    return 1 if result.skipped else 0


if __name__ == "__main__":
    sys.exit(main())
