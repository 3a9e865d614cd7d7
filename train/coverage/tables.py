"""Streaming aggregation of a predictions file: per-article sums, a sentence sample, and shares per group.

The file is read once, row by row. Each article is reduced to one vector of sums
(sentences, speaker counts and probabilities, topic counts and probabilities, and
per tagged topic its speaker counts and probabilities), so 100,000 articles take a few dozen MB
whatever their length, and every group's shares and bootstrap intervals come from
those vectors.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import json
import pickle
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from train.coverage.estimates import (
    Corrections,
    percentile_interval,
    resampled_sums,
    speaker_shares,
    topic_shares,
    with_shift,
)
from train.coverage.sources import ArticleSources
from train.data.scheme import LabelScheme
from train.errors import UserError
from train.evaluation.stats import N_RESAMPLES, SEED
from train.modeling.outputs import HeadLabels, HeadPredictions, HeadProbabilities
from train.prediction.ray_engine import PART_PREFIX, RayOptions, part_files, start_ray
from train.prediction.writers import output_format, read_rows

SAMPLE_SIZE = 2000
UNKNOWN_OUTLET = "unknown"
# Periods of a day while the dated articles span at most this many days, else months.
DAILY_SPAN_DAYS = 92


class PredictionsError(UserError):
    """A predictions file that cannot be read as `make predict` output; the message names file and row."""


@dataclass
class Article:
    id: str
    outlet: str
    date: date | None
    url: str
    sentences: int


@dataclass
class Corpus:
    """Everything the coverage report needs from one pass over the predictions file."""
    source: Path
    scheme: LabelScheme
    articles: list[Article]
    features: np.ndarray  # (articles, features): see Layout
    sample: list[dict]
    sentences: int = 0
    texts: dict[tuple[str, int], str] = field(default_factory=dict)  # sentences of the articles asked to keep
    sources: list[ArticleSources] = field(default_factory=list)  # per article, when the predictions carry sources
    # the predicted sources and quote kind of the sentences of the articles asked to keep, when the rows carry them
    kept_sources: dict[tuple[str, int], PredictedSources] = field(default_factory=dict)

    @property
    def sampled(self) -> bool:
        return len(self.sample) < self.sentences


@dataclass(frozen=True)
class Layout:
    """Column positions of an article's feature vector."""
    topics: int
    speakers: int

    @property
    def width(self) -> int:
        return 1 + 2 * self.speakers + 2 * self.topics + 2 * self.topics * self.speakers

    def split(self, sums: np.ndarray) -> FeatureSums:
        """The named parts of feature vectors (width,) or sums of them (..., width)."""
        t, k = self.topics, self.speakers
        bounds = np.cumsum([1, k, k, t, t, t * k])
        parts = np.split(sums, bounds, axis=-1)
        lead = sums.shape[:-1]
        return FeatureSums(parts[0], parts[1], parts[2], parts[3], parts[4], parts[5].reshape(*lead, t, k),
                           parts[6].reshape(*lead, t, k))


@dataclass(frozen=True)
class FeatureSums:
    """Sums over sentences of the tagger's labels (counts) and probabilities; pairs: (..., topics, speakers),
    the speaker labels or probabilities of the sentences tagged with each topic."""
    sentences: np.ndarray
    speaker_counts: np.ndarray
    speaker_probabilities: np.ndarray
    topic_counts: np.ndarray
    topic_probabilities: np.ndarray
    pair_counts: np.ndarray
    pair_probabilities: np.ndarray


def article_vector(predictions: HeadPredictions) -> np.ndarray:
    """One article's sums in Layout order, from its sentences' predictions."""
    labels, probabilities = predictions.labels, predictions.probabilities
    speaker_onehot = labels.speaker_onehot(probabilities.speaker.shape[1])
    return np.concatenate([
        [len(labels)], speaker_onehot.sum(0), probabilities.speaker.sum(0), labels.topics.sum(0),
        probabilities.topics.sum(0), (labels.topics.T @ speaker_onehot).ravel(),
        (labels.topics.T @ probabilities.speaker).ravel()]).astype(np.float32)


@dataclass(frozen=True)
class RowPrediction:
    """One prediction row's labels (ids in the checkpoint's scheme) and scores."""
    speaker: int
    topics: list[int]
    topic_scores: list[float]
    speaker_scores: list[float]


def article_predictions(rows: list[RowPrediction], n_topics: int) -> HeadPredictions:
    topics = np.zeros((len(rows), n_topics), dtype=int)
    for i, row in enumerate(rows):
        topics[i, row.topics] = 1
    return HeadPredictions(HeadLabels(topics, [row.speaker for row in rows]),
                           HeadProbabilities(np.array([row.topic_scores for row in rows]),
                                             np.array([row.speaker_scores for row in rows])))


@dataclass(frozen=True)
class PredictedSources:
    sources: list[dict]  # as `row_sources` reads them: full source dicts from JSONL, names only from CSV and Parquet
    quote: str


def row_sources(row: dict) -> list[dict]:
    """A row's sources: the JSONL list, or the flat `source_names` column of CSV and Parquet."""
    sources = row.get("sources")
    if isinstance(sources, list):
        return [s for s in sources if isinstance(s, dict) and s.get("name")]
    names = row.get("source_names")
    return [{"name": name} for name in str(names).split("; ") if name] if names else []


def _parse_date(value) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _scores(row: dict, key: str, prefix: str, labels: tuple[str, ...], where: str) -> list[float]:
    scores = row.get(key)
    try:
        if isinstance(scores, dict):
            return [float(scores[label]) for label in labels]
        return [float(row[f"{prefix}:{label}"]) for label in labels]  # CSV: one column per score
    except (KeyError, TypeError, ValueError):
        raise PredictionsError(f"{where}: no {key} for every label of the checkpoint ({', '.join(labels)}); "
                               "pass the MODEL that wrote this file") from None


class _Reader:
    """One predictions file reduced article by article; several files (the parts of a Ray run) merge after."""

    def __init__(self, path: Path, scheme: LabelScheme, sample_size: int, seed: int, keep_texts_of: set[str]):
        self.path, self.scheme, self.sample_size, self.seed = path, scheme, sample_size, seed
        self.keep_texts_of = keep_texts_of
        self.layout = Layout(len(scheme.topics), len(scheme.speakers))
        self.reduction = Reduction(str(path), [], [], [])
        self.seen: set[str] = set()

    def row(self, row: dict, where: str) -> RowPrediction:
        speaker = row.get("speaker")
        if speaker not in self.scheme.speaker2id:
            raise PredictionsError(f"{where}: speaker {speaker!r} is not one of the checkpoint's "
                                   f"({', '.join(self.scheme.speakers)}); pass the MODEL that wrote this file")
        topics = row.get("topics") or []
        unknown = [t for t in topics if t not in self.scheme.topic2id]
        if unknown:
            raise PredictionsError(f"{where}: topic {unknown[0]!r} is not one of the checkpoint's "
                                   f"({', '.join(self.scheme.topics)}); pass the MODEL that wrote this file")
        return RowPrediction(self.scheme.speaker2id[speaker], [self.scheme.topic2id[t] for t in topics],
                             _scores(row, "topic_scores", "topic", self.scheme.topics, where),
                             _scores(row, "speaker_scores", "speaker", self.scheme.speakers, where))

    def finish_article(self, rows: list[dict], parsed: list[RowPrediction], where: str) -> None:
        first = rows[0]
        article_id = str(first["article"])
        if article_id in self.seen:
            raise PredictionsError(f"{where}: article {article_id!r} appears twice, apart; the file is not one "
                                   "`make predict` output (concatenated runs?)")
        self.seen.add(article_id)
        outlet = str(first.get("outlet") or UNKNOWN_OUTLET)
        self.reduction.articles.append(Article(article_id, outlet, _parse_date(first.get("date")),
                                               str(first.get("url") or ""), len(rows)))
        # each row's sources read once: the kept sentences, the article's source counts and the sample all use them
        found = [row_sources(row) for row in rows] if any("sources" in row or "source_names" in row for row in rows) \
            else None
        if article_id in self.keep_texts_of:
            for i, row in enumerate(rows):
                key = (article_id, int(row.get("index", i)))
                self.reduction.texts[key] = str(row.get("text", ""))
                if found is not None:
                    self.reduction.kept_sources[key] = PredictedSources(found[i], str(row.get("quote") or ""))
        if found is not None:
            article_sources = ArticleSources()
            for i, row in enumerate(rows):
                article_sources.add(found[i], str(row.get("quote") or ""), self.scheme.speakers[parsed[i].speaker])
            self.reduction.sources.append(article_sources)
        self.reduction.vectors.append(article_vector(article_predictions(parsed, self.layout.topics)))
        self.sample_sentences(article_id, rows, parsed, found or [[] for _ in rows], outlet)

    def sample_sentences(self, article_id: str, rows: list[dict], parsed: list[RowPrediction], found: list[list[dict]],
                         outlet: str) -> None:
        """Keeps the sentences of lowest priority, a hash of (seed, article, position): every sentence is
        equally likely to be kept, and the sample does not depend on how the rows were split into files."""
        candidates = self.reduction.candidates
        for i, row in enumerate(rows):
            priority = sample_priority(self.seed, article_id, i)
            if len(candidates) == self.sample_size and -candidates[0][0] <= priority:
                continue
            sentence = {
                "outlet": outlet, "article": article_id, "date": str(row.get("date") or ""),
                "index": row.get("index", i), "text": str(row.get("text", "")),
                "before": str(rows[i - 1].get("text", "")) if i > 0 else "",
                "after": str(rows[i + 1].get("text", "")) if i + 1 < len(rows) else "",
                "topics": [self.scheme.topics[j] for j in parsed[i].topics],
                "speaker": self.scheme.speakers[parsed[i].speaker], "confidence": round(max(parsed[i].speaker_scores), 3),
                "sources": [source["name"] for source in found[i]]}
            entry = (-priority, sentence)  # a max-heap of the kept priorities: the first is the one to drop
            if len(candidates) < self.sample_size:
                heapq.heappush(candidates, entry)
            else:
                heapq.heapreplace(candidates, entry)


def sample_priority(seed: int, article: str, position: int) -> int:
    digest = hashlib.blake2b(f"{seed}\0{article}\0{position}".encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


@dataclass
class Reduction:
    """One predictions file reduced: its articles in file order, their feature vectors, and its sample
    candidates (negated priority, sentence)."""
    source: str
    articles: list[Article]
    vectors: list[np.ndarray]
    candidates: list[tuple[int, dict]]
    texts: dict[tuple[str, int], str] = field(default_factory=dict)  # sentences of the articles asked to keep
    sources: list[ArticleSources] = field(default_factory=list)  # per article, when the predictions carry sources
    kept_sources: dict[tuple[str, int], PredictedSources] = field(default_factory=dict)


def reduce_file(path: Path, scheme: LabelScheme, sample_size: int = SAMPLE_SIZE, seed: int = SEED,
                keep_texts_of: set[str] = frozenset()) -> Reduction:
    """One streaming pass over a `make predict` output file (JSONL, CSV or Parquet); the sentences of the
    articles in `keep_texts_of` are kept by (article, index)."""
    fmt = output_format(path, None)
    reader = _Reader(path, scheme, sample_size, seed, keep_texts_of)
    rows: list[dict] = []
    parsed: list[RowPrediction] = []
    number = 0
    try:
        for number, row in enumerate(read_rows(path, fmt), start=1):
            where = f"{path}:{number + (fmt == 'csv')}" if fmt != "parquet" else f"{path}: row {number}"
            if not isinstance(row, dict) or "article" not in row:
                raise PredictionsError(f"{where}: not a prediction row (no 'article'); expected `make predict` "
                                       "output")
            if rows and str(row["article"]) != str(rows[0]["article"]):
                reader.finish_article(rows, parsed, where)
                rows, parsed = [], []
            rows.append(row)
            parsed.append(reader.row(row, where))
    except json.JSONDecodeError as e:
        raise PredictionsError(f"{path}:{number + 1}: invalid JSON ({e.msg}); expected `make predict` output") from None
    except (csv.Error, OSError) as e:
        raise PredictionsError(f"{path}: cannot be read as {fmt} ({e})") from None
    if rows:
        reader.finish_article(rows, parsed, f"{path}:{number}")
    return reader.reduction


def prediction_files(path: Path) -> list[Path]:
    """A predictions file, or the part files of a folder written by `make predict ENGINE=ray`."""
    if path.is_dir():
        parts = part_files(path)
        if not parts:
            raise PredictionsError(f"{path}: no part files ({PART_PREFIX}*.jsonl or .parquet); write them with "
                                   "`make predict ENGINE=ray`")
        return parts
    if not path.is_file():
        raise PredictionsError(f"{path}: predictions file not found; write one with `make predict`")
    return [path]


def reduce_on_ray(files: list[Path], scheme: LabelScheme, sample_size: int, seed: int,
                  keep_texts_of: set[str]) -> list[Reduction]:
    """`reduce_file` of every part as Ray tasks, one part each; back in part order."""
    import pyarrow as pa

    ray = start_ray(RayOptions())

    def reduce_parts(batch):
        reductions = [pickle.dumps(reduce_file(Path(path), scheme, sample_size, seed, keep_texts_of))
                      for path in batch["path"].to_pylist()]
        return pa.table({"order": batch["order"], "reduction": pa.array(reductions, pa.binary())})

    rows = ray.data.from_items([{"order": i, "path": str(path.resolve())} for i, path in enumerate(files)]) \
        .map_batches(reduce_parts, batch_size=1, batch_format="pyarrow").take_all()
    return [pickle.loads(row["reduction"]) for row in sorted(rows, key=lambda row: row["order"])]


def read_corpus(path: str | Path, scheme: LabelScheme, sample_size: int = SAMPLE_SIZE, seed: int = SEED,
                engine: str = "local", keep_texts_of: set[str] = frozenset()) -> Corpus:
    """Every file of `path` reduced (here, or on Ray with engine="ray"), then merged in file order."""
    path = Path(path)
    files = prediction_files(path)
    if engine == "ray":
        reductions = reduce_on_ray(files, scheme, sample_size, seed, keep_texts_of)
    else:
        reductions = [reduce_file(file, scheme, sample_size, seed, keep_texts_of) for file in files]
    corpus = Corpus(path, scheme, [], np.empty(0), [])
    seen: dict[str, str] = {}
    vectors = []
    for reduction in reductions:
        for article in reduction.articles:
            if article.id in seen:
                raise PredictionsError(f"{reduction.source}: article {article.id!r} is also in {seen[article.id]}; "
                                       "the parts are not one `make predict` output")
            seen[article.id] = reduction.source
        corpus.articles.extend(reduction.articles)
        vectors.extend(reduction.vectors)
        corpus.texts.update(reduction.texts)
        corpus.kept_sources.update(reduction.kept_sources)
        corpus.sources.extend(reduction.sources)
    if not corpus.articles:
        raise PredictionsError(f"{path}: no prediction rows; expected `make predict` output")
    corpus.features = np.vstack(vectors)
    corpus.sentences = int(corpus.features[:, 0].sum())
    kept = heapq.nlargest(sample_size, (c for r in reductions for c in r.candidates), key=lambda c: c[0])
    corpus.sample = [sentence for _, sentence in kept]
    return corpus


SHARE_KINDS = ("speaker", "topic", "pair")  # the keys of a group's shares


@dataclass(frozen=True)
class Shares:
    """Shares by kind: speaker, the share of sentences by speaker; topic, the share of sentences carrying each
    topic; pair, within the sentences tagged with each topic (rows), the share by speaker (columns)."""
    corrected: dict[str, np.ndarray]
    raw: dict[str, np.ndarray]  # the tagger's label counts over the sentences: what the corrections start from


def shares(sums: np.ndarray, layout: Layout, corrections: Corrections, resampled: bool = False) -> Shares:
    """Raw and corrected shares from feature sums: (width,), or (resamples, width) with `resampled`, which
    then uses each resample's error rates and shift draw as well."""
    parts = layout.split(np.asarray(sums, dtype=float))
    speaker, topics = corrections.speaker, corrections.topics
    speaker_rates = speaker.resampled[:, 0] if resampled else speaker.rates[0]
    topic_rates = topics.resampled if resampled else topics.rates
    with np.errstate(invalid="ignore", divide="ignore"):
        n = parts.sentences
        within = parts.topic_counts[..., None]
        raw = {"speaker": parts.speaker_counts / n, "topic": parts.topic_counts / n, "pair": parts.pair_counts / within}
        corrected = {
            "speaker": speaker_shares(speaker, raw["speaker"], parts.speaker_probabilities / n, speaker_rates),
            "topic": topic_shares(topics, raw["topic"], parts.topic_probabilities / n, topic_rates),
            "pair": speaker_shares(speaker, np.nan_to_num(raw["pair"]),
                                   np.nan_to_num(parts.pair_probabilities / within),
                                   speaker_rates[:, None] if resampled else speaker_rates),
        }
    corrected["pair"][np.isnan(raw["pair"])] = np.nan
    if resampled:
        shift = {"speaker": speaker.shift, "topic": topics.shift, "pair": speaker.shift}
        corrected = {kind: with_shift(corrected[kind], shift[kind]) for kind in SHARE_KINDS}
    return Shares(corrected, raw)


@dataclass
class GroupShares:
    """One group's (all articles, an outlet, a period) estimates with 95% intervals, its raw shares and the
    tagger's label counts behind them, each by kind (SHARE_KINDS)."""
    name: str
    articles: int
    sentences: int
    estimate: dict[str, np.ndarray]
    low: dict[str, np.ndarray]
    high: dict[str, np.ndarray]
    raw: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]


def group_shares(name: str, features: np.ndarray, layout: Layout, corrections: Corrections,
                 n_resamples: int = N_RESAMPLES, seed: int = SEED) -> GroupShares:
    sums = features.sum(axis=0, dtype=float)
    estimate = shares(sums, layout, corrections)
    resampled = shares(resampled_sums(features, n_resamples, seed), layout, corrections, resampled=True)
    low, high = {}, {}
    for kind in SHARE_KINDS:
        low[kind], high[kind] = percentile_interval(resampled.corrected[kind])
    parts = layout.split(sums)
    return GroupShares(name, len(features), int(parts.sentences[0]), estimate.corrected, low, high, estimate.raw,
                       {"speaker": parts.speaker_counts, "topic": parts.topic_counts, "pair": parts.pair_counts})


def period_keys(dates: list[date | None]) -> tuple[list[str | None], str]:
    """Each article's period (a day, or a month when the dates span more than DAILY_SPAN_DAYS) and its unit."""
    known = [d for d in dates if d]
    daily = bool(known) and (max(known) - min(known)).days <= DAILY_SPAN_DAYS
    unit = "day" if daily else "month"
    return [(d.isoformat() if daily else d.strftime("%Y-%m")) if d else None for d in dates], unit


def grouped(corpus: Corpus, keys: list[str | None]) -> dict[str, np.ndarray]:
    """Row indices of corpus.features per key, keys in sorted order; None (no key) is left out."""
    order: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        if key is not None:
            order.setdefault(key, []).append(i)
    return {key: np.asarray(order[key]) for key in sorted(order)}
