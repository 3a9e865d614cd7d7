"""Coverage report benchmark: a synthetic predictions file with a known truth, then page size, time and error.

The file is drawn as a tagger with known errors would write it: each sentence gets
a true speaker and true topics from its outlet's distribution, then a predicted
speaker through a known confusion matrix and predicted topics through known true-
and false-positive rates. The report's corrected shares can then be checked
against the truth, and its raw counts show the bias the correction removes.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from train.coverage.estimates import HeldOutErrors
from train.coverage.page import build_coverage
from train.coverage.tables import read_corpus
from train.data.scheme import LabelScheme, load_scheme
from train.data.segment import split_sentences

ROOT = Path(__file__).resolve().parents[2]
CHUNK_ARTICLES = 2000


def seed_sentences() -> list[str]:
    return [s for path in sorted((ROOT / "seeds").glob("*.txt"))
            for s in split_sentences(path.read_text(encoding="utf-8"))]


def known_errors(scheme: LabelScheme, accuracy: float = 0.8, seed: int = 1) -> HeldOutErrors:
    """A tagger that is right `accuracy` of the time on speakers, its mistakes spread unevenly."""
    rng = np.random.default_rng(seed)
    k, t = len(scheme.speakers), len(scheme.topics)
    mistakes = rng.dirichlet(np.ones(k - 1), size=k) * (1 - accuracy)
    rates = np.zeros((k, k))
    for i in range(k):
        rates[i, i] = accuracy
        rates[i, [j for j in range(k) if j != i]] = mistakes[i]
    return HeldOutErrors(source="synthetic", sentences=10**6, speaker_confusion=rates * 1000,
                         topic_true_positive_rate=rng.uniform(0.6, 0.9, t),
                         topic_false_positive_rate=rng.uniform(0.02, 0.1, t), speaker_ece=0.2, topic_ece=0.2)


def write_synthetic_predictions(path: Path, scheme: LabelScheme, errors: HeldOutErrors, articles: int,
                                outlets: int = 40, mean_sentences: int = 12, days: int = 60, seed: int = 0) -> dict:
    """Write a JSONL predictions file; return the true speaker and topic shares over all its sentences."""
    rng = np.random.default_rng(seed)
    texts = seed_sentences()
    k, t = len(scheme.speakers), len(scheme.topics)
    rates = errors.speaker_confusion / errors.speaker_confusion.sum(axis=1, keepdims=True)
    cumulative = rates.cumsum(axis=1)
    outlet_speakers = rng.dirichlet(np.full(k, 0.7), size=outlets)
    outlet_topics = rng.uniform(0.02, 0.4, size=(outlets, t))
    true_speakers, true_topics, total = np.zeros(k), np.zeros(t), 0
    start = date(2021, 12, 1)
    with path.open("w", encoding="utf-8") as file:
        for first in range(0, articles, CHUNK_ARTICLES):
            lines = []
            for a in range(first, min(first + CHUNK_ARTICLES, articles)):
                outlet = int(rng.integers(outlets))
                n = int(rng.poisson(mean_sentences - 1)) + 1
                speaker = rng.choice(k, size=n, p=outlet_speakers[outlet])
                predicted = np.minimum((rng.random((n, 1)) > cumulative[speaker]).sum(axis=1), k - 1)
                topics = rng.random((n, t)) < outlet_topics[outlet]
                predicted_topics = np.where(topics, rng.random((n, t)) < errors.topic_true_positive_rate,
                                            rng.random((n, t)) < errors.topic_false_positive_rate)
                true_speakers += np.bincount(speaker, minlength=k)
                true_topics += topics.sum(axis=0)
                total += n
                day = (start + timedelta(days=int(rng.integers(days)))).isoformat()
                offset = int(rng.integers(len(texts)))
                for i in range(n):
                    speaker_scores = np.full(k, 0.4 / (k - 1))
                    speaker_scores[predicted[i]] = 0.6
                    lines.append(json.dumps({
                        "article": f"a{a:06d}", "outlet": f"outlet-{outlet:02d}", "date": day,
                        "url": f"https://example.org/{a}", "index": i, "text": texts[(offset + i) % len(texts)],
                        "topics": [scheme.topics[j] for j in np.flatnonzero(predicted_topics[i])],
                        "topic_scores": {topic: 0.8 if predicted_topics[i, j] else 0.1
                                         for j, topic in enumerate(scheme.topics)},
                        "speaker": scheme.speakers[predicted[i]],
                        "speaker_scores": dict(zip(scheme.speakers, np.round(speaker_scores, 4).tolist())),
                    }, ensure_ascii=False))
            file.write("\n".join(lines) + "\n")
    return {"speaker": true_speakers / total, "topic": true_topics / total, "sentences": total}


def run_coverage_benchmark(articles: int = 100_000, repeats: int = 3, work_dir: Path | None = None) -> dict:
    scheme = load_scheme(ROOT / "configs/labels.yaml")
    errors = known_errors(scheme)
    with tempfile.TemporaryDirectory(dir=work_dir) as directory:
        predictions = Path(directory) / "predictions.jsonl"
        started = time.perf_counter()
        truth = write_synthetic_predictions(predictions, scheme, errors, articles)
        generated = time.perf_counter() - started
        seconds, reading = [], []
        for repeat in range(repeats):
            started = time.perf_counter()
            read_corpus(predictions, scheme)
            reading.append(time.perf_counter() - started)
            started = time.perf_counter()
            out = build_coverage(predictions, scheme, errors, "synthetic", Path(directory) / f"report-{repeat}")
            seconds.append(time.perf_counter() - started)
        page_mb = (out / "index.html").stat().st_size / 1e6
        estimates = _overall_estimates(out, scheme)
        file_mb = predictions.stat().st_size / 1e6
    raw_error = {kind: float(np.abs(estimates[f"raw_{kind}"] - truth[kind]).max()) for kind in ("speaker", "topic")}
    adjusted_error = {kind: float(np.abs(estimates[kind] - truth[kind]).max()) for kind in ("speaker", "topic")}
    return {"articles": articles, "sentences": truth["sentences"], "file_mb": round(file_mb, 1),
            "generate_s": round(generated, 1), "seconds": [round(s, 1) for s in seconds],
            "read_seconds": [round(s, 1) for s in reading], "page_mb": round(page_mb, 2),
            "max_abs_error_raw": raw_error, "max_abs_error_adjusted": adjusted_error}


def _overall_estimates(out: Path, scheme: LabelScheme) -> dict[str, np.ndarray]:
    import csv

    values: dict[str, dict[str, float]] = {"speaker": {}, "topic": {}, "raw_speaker": {}, "raw_topic": {}}
    with (out / "shares.csv").open(encoding="utf-8") as file:
        for row in csv.DictReader(file):
            if row["scope"] == "overall" and row["measure"] in ("speaker_share", "topic_share"):
                kind, label = ("speaker", row["speaker"]) if row["measure"] == "speaker_share" else ("topic", row["topic"])
                values[kind][label] = float(row["estimate"])
                values[f"raw_{kind}"][label] = float(row["raw_share"])
    labels = {"speaker": scheme.speakers, "topic": scheme.topics}
    return {key: np.array([found[label] for label in labels[key.removeprefix("raw_")]])
            for key, found in values.items()}


def format_coverage(result: dict) -> str:
    seconds, reading = result["seconds"], result["read_seconds"]
    return "\n".join([
        f"coverage report: {result['articles']:,} articles, {result['sentences']:,} sentences "
        f"({result['file_mb']} MB of JSONL)",
        f"  total time: median {statistics.median(seconds):.1f} s (runs: {', '.join(map(str, seconds))}); "
        f"of which reading: median {statistics.median(reading):.1f} s",
        f"  page: {result['page_mb']} MB",
        "  largest error of an overall share against the known truth (percentage points): "
        f"speakers raw {result['max_abs_error_raw']['speaker'] * 100:.1f}, corrected "
        f"{result['max_abs_error_adjusted']['speaker'] * 100:.1f}; topics raw "
        f"{result['max_abs_error_raw']['topic'] * 100:.1f}, corrected {result['max_abs_error_adjusted']['topic'] * 100:.1f}",
    ])
