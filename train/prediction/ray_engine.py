"""Prediction on Ray Data: the records of `run.py`, written by a pool of actors as a folder of part files.

The driver reads and segments the articles with the single-process readers (same ids, same problem
reports) and cuts them into the same chunks as run.py, so every sentence is tagged in the same batch
as there. Each chunk is one row of a Ray dataset; an actor, holding one Tagger, tags it and writes it
as one part file, atomically, under a name derived from the chunk's article ids. A retried chunk thus
replaces its own part instead of adding a second copy, and a killed job leaves only whole parts,
whose article ids `--resume` skips.

On a cluster of several machines, the checkpoint and the output folder must be on a filesystem that
every node mounts at the same path, and the project installed on every node.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from train.atomic import write_file_atomically
from train.errors import UsageError
from train.modeling.checkpoint import open_checkpoint, write_json
from train.modeling.tagger import Tagger
from train.prediction.readers import INPUT_SUFFIXES, Article, Problems, check_inputs, read_articles
from train.prediction.run import RunResult, chunk_articles
from train.prediction.summary import summarize
from train.prediction.writers import JsonlWriter, ParquetWriter, output_row, read_rows

INSTALL_HINT = 'the Ray engine needs the ray extra: pip install -e ".[ray]"'
PART_FORMATS = ("parquet", "jsonl")
PART_PREFIX = "part-"
SUMMARY = "summary.json"


@dataclass(frozen=True)
class RayOptions:
    """Where the job runs and what each actor asks of the cluster."""
    address: str | None = None  # None: a local cluster; "auto" or "ray://host:port": an existing one
    min_actors: int = 2
    max_actors: int = 2
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0


def parse_actors(value: str) -> tuple[int, int]:
    """`N` (a fixed pool) or `MIN:MAX` (an autoscaling one) -> (min, max)."""
    low, _, high = value.partition(":")
    try:
        bounds = (int(low), int(high or low))
    except ValueError:
        raise UsageError(f"--actors {value}: give a number of actors, N, or a range MIN:MAX such as 1:8") from None
    if bounds[0] < 1 or bounds[1] < bounds[0]:
        raise UsageError(f"--actors {value}: need 1 <= MIN <= MAX")
    return bounds


def import_ray():
    """Ray, imported only when the Ray engine runs, so everything else works without the extra."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


def part_files(folder: Path) -> list[Path]:
    """The committed part files of a folder, in name order (temporary files start with a dot)."""
    return sorted(p for p in folder.iterdir() if p.name.startswith(PART_PREFIX) and p.suffix[1:] in PART_FORMATS) \
        if folder.is_dir() else []


def part_format(folder: Path) -> str:
    formats = {p.suffix[1:] for p in part_files(folder)}
    if len(formats) > 1:
        raise UsageError(f"{folder} holds both {' and '.join(sorted(formats))} part files; it is not one run's output")
    return formats.pop() if formats else "jsonl"


def read_parts(folder: Path) -> Iterator[dict]:
    """The sentence rows of every part file, part by part."""
    fmt = part_format(folder)
    for path in part_files(folder):
        yield from read_rows(path, fmt)


def check_part_folder(inputs: list[str], out: Path, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse an output folder that holds anything but an earlier run's parts, or that exists without
    --resume or --overwrite, or that lies inside an input (its parts would be read as articles)."""
    if resume and overwrite:
        raise UsageError("--resume continues the output and --overwrite replaces it: give one of them")
    target = out.resolve()
    for name in inputs:
        if name != "-" and (Path(name).resolve() == target or Path(name).resolve() in target.parents):
            raise UsageError(f"--out {out} is inside the input {name}; write the part files elsewhere")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; the Ray engine writes a folder of part files")
    if not out.is_dir() or not any(out.iterdir()):
        return
    foreign = [p.name for p in out.iterdir() if p not in part_files(out) and p.name != SUMMARY
               and not p.name.startswith(f".{PART_PREFIX}")]
    if foreign:
        raise UsageError(f"{out} holds {foreign[0]}, which is not a part file of this tool; choose another --out")
    if not (resume or overwrite):
        raise UsageError(f"{out} already exists: pass --overwrite to replace it, or --resume to continue it")


def committed_articles(folder: Path) -> set[str]:
    """Article ids in the committed parts; a part is renamed into place whole, so each is complete.

    Temporary files of a killed job are removed: their chunks are tagged again.
    """
    for stale in folder.glob(f".{PART_PREFIX}*"):
        stale.unlink()
    if part_format(folder) == "jsonl":
        return {str(row["article"]) for row in read_parts(folder)}
    import pyarrow.parquet as pq

    return {str(article) for path in part_files(folder) for article in
            pq.read_table(path, columns=["article"]).column("article").to_pylist()}


def part_name(chunk: list[tuple[Article, list[str]]]) -> str:
    """Derived from the chunk's article ids: a retry of the chunk writes the same part again."""
    digest = hashlib.sha1("\0".join(article.id for article, _ in chunk).encode("utf-8", "surrogatepass"))
    return f"{PART_PREFIX}{digest.hexdigest()[:20]}"


class PartTagger:
    """One Ray actor: a Tagger loaded once in the constructor, then chunk after chunk tagged and written."""

    def __init__(self, checkpoint: str, out: str, fmt: str, threads: int, device: str | None, int8: bool,
                 batch_size: int, sources: bool, roles: str | None):
        # One process per actor already: tokenizer threads would only compete with torch's for the CPUs.
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        self.tagger = Tagger.from_pretrained(checkpoint, device=device, int8=int8, num_threads=threads,
                                             batch_size=batch_size, sources=sources, roles=roles)
        self.out, self.fmt = Path(out), fmt

    def __call__(self, batch):
        parts, articles, sentences, empty = [], [], [], []
        for name, payload in zip(batch["part"].to_pylist(), batch["chunk"].to_pylist()):
            chunk: list[tuple[Article, list[str]]] = pickle.loads(payload)
            tagged_chunk = self.tagger.tag_sentences([segmented for _, segmented in chunk],
                                                     dates=[article.metadata.get("date") for article, _ in chunk])
            rows = [[output_row(article, sentence) for sentence in tagged]
                    for (article, _), tagged in zip(chunk, tagged_chunk) if tagged]
            if rows:
                write_file_atomically(self.out / f"{name}.{self.fmt}", lambda path: self._write(path, rows))
            parts.append(name)
            articles.append(len(rows))
            sentences.append(sum(map(len, rows)))
            empty.append(json.dumps([article.source for (article, _), tagged in zip(chunk, tagged_chunk)
                                     if not tagged]))
        return {"part": parts, "articles": articles, "sentences": sentences, "empty": empty}

    def _write(self, path: Path, rows: list[list[dict]]) -> None:
        if self.fmt == "jsonl":
            writer = JsonlWriter(path, append=False)
        else:
            writer = ParquetWriter(path, self.tagger.topics, self.tagger.speakers)
        for article_rows in rows:
            writer.write(article_rows)
        writer.close()


def start_ray(options: RayOptions):
    """Connect to the cluster at `options.address`, or start a local one (no dashboard, no usage stats)."""
    ray = import_ray()
    if not ray.is_initialized():
        # No usage report leaves an air-gapped machine; the job needs no dashboard.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False,
                 configure_logging=True, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    return ray


def predict_on_ray(model: str | Path | None, inputs: list[str], out: Path, fmt: str = "parquet",
                   options: RayOptions = RayOptions(), resume: bool = False, overwrite: bool = False,
                   chunk_sentences: int = 2048, batch_size: int = 64, device: str | None = None,
                   int8: bool = False, sources: bool = True, roles: str | Path | None = None, progress: bool = False,
                   report=None) -> RunResult:
    """Tag every article of `inputs` on Ray into the part-file folder `out`, then write `out/summary.json`.

    A fresh run writes into `out` as it goes, so that a killed job can be resumed; --overwrite writes
    into a hidden folder beside `out` that replaces it only once complete, so a failed run leaves the
    earlier output as it was.
    """
    if fmt not in PART_FORMATS:
        raise UsageError(f"the Ray engine writes {' or '.join(PART_FORMATS)} part files, not {fmt}")
    check_inputs(inputs)
    check_part_folder(inputs, out, resume, overwrite)
    if resume and out.is_dir() and part_files(out) and part_format(out) != fmt:
        raise UsageError(f"{out} holds {part_format(out)} part files; resume it with --format {part_format(out)}")
    checkpoint = open_checkpoint(model)
    ray = start_ray(options)
    problems = Problems(report or (lambda line: tqdm.write(line, file=sys.stderr)))
    result = RunResult(problems=problems.counts)
    target = out.with_name(f".{out.name}.overwrite") if overwrite and out.exists() else out
    if target != out:
        shutil.rmtree(target, ignore_errors=True)  # what a killed --overwrite run had staged
    done = committed_articles(target) if resume else set()

    blocks = [ray.put(_chunk_table(chunk)) for chunk in
              chunk_articles(_unique_and_new(read_articles(inputs, problems), done, result), chunk_sentences)]
    if not blocks and not result.already_done:
        raise UsageError(f"no article to tag in {', '.join(inputs)} ({result.skipped} inputs skipped; inputs are "
                         f"{', '.join(INPUT_SUFFIXES)} files, directories of them, or -); nothing written to {out}")
    target.mkdir(parents=True, exist_ok=True)  # only now: a usage error above leaves no folder behind
    if blocks:
        tagged = ray.data.from_arrow_refs(blocks).map_batches(
            PartTagger, batch_size=1, batch_format="pyarrow",
            fn_constructor_kwargs={"checkpoint": str(checkpoint.path.resolve()), "out": str(target.resolve()),
                                   "fmt": fmt, "threads": max(1, int(options.cpus_per_actor)), "device": device,
                                   "int8": int8, "batch_size": batch_size, "sources": sources,
                                   "roles": str(Path(roles).resolve()) if roles else None},
            # No more actors than chunks: an actor with nothing to tag would only load a model.
            compute=ray.data.ActorPoolStrategy(min_size=min(options.min_actors, len(blocks)),
                                               max_size=min(options.max_actors, len(blocks))),
            # Ray Data's own fault tolerance: an actor that dies is restarted and its chunk retried.
            num_cpus=options.cpus_per_actor, num_gpus=options.gpus_per_actor)
        bar = tqdm(total=len(blocks), unit=" parts", disable=not progress, file=sys.stderr)
        for batch in tagged.iter_batches(batch_size=None, batch_format="pyarrow"):
            for row in batch.to_pylist():
                result.articles += row["articles"]
                result.sentences += row["sentences"]
                for source in json.loads(row["empty"]):
                    problems.add(source, "empty", "no sentences")
                bar.update()
        bar.close()
    if target != out:
        _replace_folder(target, out)
    result.summary = write_part_summary(out, checkpoint.scheme.topics, checkpoint.scheme.speakers)
    return result


def _unique_and_new(articles: Iterator[Article], done: set[str], result: RunResult) -> Iterator[Article]:
    """Articles not yet in a committed part; an id seen twice stops the job before any tagging starts,
    since every article is read and put into the object store before the dataset runs."""
    seen: set[str] = set()
    for article in articles:
        if article.id in seen:
            raise UsageError(f"{article.source}: article id {article.id!r} occurs twice in the input; ids must be "
                             "unique, since --resume and the coverage report key articles by id")
        seen.add(article.id)
        if article.id in done:
            result.already_done += 1
        else:
            yield article


def _chunk_table(chunk: list[tuple[Article, list[str]]]):
    import pyarrow as pa

    # Pickled rather than as columns: metadata from JSONL keeps its JSON types, exactly as run.py writes them.
    return pa.table({"part": [part_name(chunk)], "chunk": pa.array([pickle.dumps(chunk)], pa.binary())})


def _replace_folder(new: Path, out: Path) -> None:
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old)


def write_part_summary(out: Path, topics: list[str], speakers: list[str]) -> Path:
    """`out/summary.json` over every part, as run.py's summary over its one file; written atomically.

    It also checks that no article is in two parts, which would mean a retried chunk was written twice.
    """
    seen: set[str] = set()
    current = None

    def rows() -> Iterator[dict]:
        nonlocal current
        for row in read_parts(out):
            if row["article"] != current:
                current = row["article"]
                if current in seen:
                    raise UsageError(f"{out}: article {current!r} is in two part files; rerun with --overwrite")
                seen.add(current)
            yield row

    path = out / SUMMARY
    write_json(path, {"output": str(out), **summarize(rows(), topics, speakers)})
    return path
