"""Coverage report benchmark: a synthetic predictions file with a known truth, then page size, time and error.

The file is drawn as a tagger with known errors would write it: each sentence gets
a true speaker and true topics from its outlet's distribution, then a predicted
speaker through a known confusion matrix and predicted topics through known true-
and false-positive rates. The corrections are fitted on labelled sentences of six
synthetic events, each with error rates moved a little, and the coverage's own
rates are moved again: the shift real coverage brings. The report's corrected
shares can then be checked against the truth beside the raw counts.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from train.coverage.calibration import Calibration, article_folds, calibration
from train.coverage.estimates import fit_corrections
from train.coverage.page import ALL_ARTICLES, build_coverage
from train.coverage.tables import GroupShares, Layout, article_vector, group_shares, read_corpus
from train.data.scheme import LabelScheme, load_scheme
from train.data.segment import split_sentences
from train.evaluation.stats import N_RESAMPLES, SEED
from train.modeling.outputs import HeadLabels, HeadPredictions, HeadProbabilities

ROOT = Path(__file__).resolve().parents[2]
CHUNK_ARTICLES = 2000


def seed_sentences() -> list[str]:
    return [s for path in sorted((ROOT / "seeds").glob("*.txt"))
            for s in split_sentences(path.read_text(encoding="utf-8"))]


@dataclass(frozen=True)
class SyntheticTagger:
    """A tagger with known errors: P(predicted speaker | true speaker) and per-topic true- and false-positive rates."""
    speaker_rates: np.ndarray  # (speakers, speakers): rows true, columns predicted
    topic_tpr: np.ndarray  # (topics,)
    topic_fpr: np.ndarray  # (topics,)

    @classmethod
    def drawn(cls, speakers: int, topics: int, accuracy: float = 0.8, seed: int = 1) -> SyntheticTagger:
        """Right `accuracy` of the time on speakers, its mistakes spread unevenly."""
        rng = np.random.default_rng(seed)
        rates = rng.dirichlet(np.ones(speakers), size=speakers) * (1 - accuracy)
        rates[np.arange(speakers), np.arange(speakers)] = 0
        rates = rates / rates.sum(axis=1, keepdims=True) * (1 - accuracy) + np.eye(speakers) * accuracy
        return cls(rates, rng.uniform(0.6, 0.9, topics), rng.uniform(0.02, 0.1, topics))

    def shifted(self, strength: float, seed: int) -> SyntheticTagger:
        """The same tagger on another kind of text: each speaker row mixed `strength` of the way towards a random
        one, each topic rate moved by up to `strength` / 2."""
        if strength == 0:
            return self
        rng = np.random.default_rng(seed)
        k = len(self.speaker_rates)
        rates = (1 - strength) * self.speaker_rates + strength * rng.dirichlet(np.ones(k), size=k)
        move = rng.uniform(-strength / 2, strength / 2, size=(2, len(self.topic_tpr)))
        return SyntheticTagger(rates, np.clip(self.topic_tpr + move[0], 0.3, 0.98),
                               np.clip(self.topic_fpr + move[1] / 4, 0.005, 0.3))

    def tag(self, speakers: np.ndarray, topics: np.ndarray, rng: np.random.Generator) -> HeadPredictions:
        """Predictions and probabilities for sentences of known true speakers and topics."""
        n, k = len(speakers), len(self.speaker_rates)
        predicted = np.minimum((rng.random((n, 1)) > self.speaker_rates[speakers].cumsum(axis=1)).sum(axis=1), k - 1)
        spread = rng.dirichlet(np.ones(k), size=n)
        confidence = rng.uniform(0.45, 0.95, size=n)
        spread[np.arange(n), predicted] = 0
        probs = spread / spread.sum(axis=1, keepdims=True) * (1 - confidence)[:, None]
        probs[np.arange(n), predicted] = confidence
        topic_pred = np.where(topics, rng.random(topics.shape) < self.topic_tpr, rng.random(topics.shape) < self.topic_fpr)
        topic_probs = np.where(topic_pred, 0.5 + 0.5 * rng.random(topics.shape), 0.5 * rng.random(topics.shape))
        return HeadPredictions(HeadLabels(topic_pred, predicted), HeadProbabilities(topic_probs, probs))


def draw_sentences(rng: np.random.Generator, n: int, speaker_shares: np.ndarray,
                   topic_shares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return rng.choice(len(speaker_shares), size=n, p=speaker_shares), rng.random((n, len(topic_shares))) < topic_shares


def synthetic_calibration(tagger: SyntheticTagger, groups: int = 6, sentences_per_group: int = 60,
                          shift: float = 0.0, same_coverage: bool = False, sentences_per_article: int = 10,
                          shares: tuple[np.ndarray, np.ndarray] | None = None, seed: int = 0) -> Calibration:
    """Labelled sentences in `groups` events, each with its own shares (or all at `shares`, as a random sample
    of one coverage has) and, with `shift`, its own error rates."""
    rng = np.random.default_rng(seed)
    k, t = len(tagger.speaker_rates), len(tagger.topic_tpr)
    parts = []
    for group in range(groups):
        speakers, topics = draw_sentences(rng, sentences_per_group, *(shares or (rng.dirichlet(np.ones(k)),
                                                                                  rng.uniform(0.02, 0.4, t))))
        predictions = tagger.shifted(shift, seed * 100 + group).tag(speakers, topics, rng)
        articles = [f"g{group}-a{i // sentences_per_article}" for i in range(sentences_per_group)]
        parts.append((HeadLabels(topics, speakers), predictions, articles, [f"event {group}"] * sentences_per_group))
    folds = np.concatenate([p[3] for p in parts])
    articles = np.concatenate([p[2] for p in parts])
    predictions = HeadPredictions.concatenate([p[1] for p in parts])
    return calibration(
        "synthetic labelled sentences", same_coverage, articles,
        article_folds(articles) if same_coverage else folds, "article" if same_coverage else "event",
        predictions.probabilities, predictions.labels, HeadLabels.concatenate([p[0] for p in parts]), "synthetic")


def synthetic_coverage(tagger: SyntheticTagger, layout: Layout, articles: int, speaker_shares: np.ndarray,
                       topic_shares: np.ndarray, mean_sentences: int = 8, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Per-article feature vectors of a coverage tagged by `tagger`, and its true overall shares."""
    rng = np.random.default_rng(seed)
    vectors, true_speakers, true_topics = [], np.zeros(layout.speakers), np.zeros(layout.topics)
    for _ in range(articles):
        speakers, topics = draw_sentences(rng, int(rng.poisson(mean_sentences - 1)) + 1, speaker_shares, topic_shares)
        vectors.append(article_vector(tagger.tag(speakers, topics, rng)))
        true_speakers += np.bincount(speakers, minlength=layout.speakers)
        true_topics += topics.sum(axis=0)
    total = true_speakers.sum()
    return np.vstack(vectors), {"speaker": true_speakers / total, "topic": true_topics / total}


def write_synthetic_predictions(path: Path, scheme: LabelScheme, tagger: SyntheticTagger, articles: int,
                                outlets: int = 40, mean_sentences: int = 12, days: int = 60, seed: int = 0) -> dict:
    """Write a JSONL predictions file; return the true speaker and topic shares over all its sentences."""
    rng = np.random.default_rng(seed)
    texts = seed_sentences()
    k, t = len(scheme.speakers), len(scheme.topics)
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
                speakers, topics = draw_sentences(rng, n, outlet_speakers[outlet], outlet_topics[outlet])
                tagged = tagger.tag(speakers, topics, rng)
                labels, probabilities = tagged.labels, tagged.probabilities
                true_speakers += np.bincount(speakers, minlength=k)
                true_topics += topics.sum(axis=0)
                total += n
                day = (start + timedelta(days=int(rng.integers(days)))).isoformat()
                offset = int(rng.integers(len(texts)))
                for i in range(n):
                    lines.append(json.dumps({
                        "article": f"a{a:06d}", "outlet": f"outlet-{outlet:02d}", "date": day,
                        "url": f"https://example.org/{a}", "index": i, "text": texts[(offset + i) % len(texts)],
                        "topics": [scheme.topics[j] for j in np.flatnonzero(labels.topics[i])],
                        "topic_scores": dict(zip(scheme.topics, np.round(probabilities.topics[i], 4).tolist())),
                        "speaker": scheme.speakers[labels.speaker[i]],
                        "speaker_scores": dict(zip(scheme.speakers, np.round(probabilities.speaker[i], 4).tolist())),
                    }, ensure_ascii=False))
            file.write("\n".join(lines) + "\n")
    return {"speaker": true_speakers / total, "topic": true_topics / total, "sentences": total}


def run_coverage_benchmark(articles: int = 100_000, repeats: int = 3, work_dir: Path | None = None) -> dict:
    scheme = load_scheme(ROOT / "configs/labels.yaml")
    tagger = SyntheticTagger.drawn(len(scheme.speakers), len(scheme.topics))
    held_out = synthetic_calibration(tagger, shift=0.1)
    with tempfile.TemporaryDirectory(dir=work_dir) as directory:
        predictions = Path(directory) / "predictions.jsonl"
        started = time.perf_counter()
        truth = write_synthetic_predictions(predictions, scheme, tagger.shifted(0.1, seed=99), articles)
        generated = time.perf_counter() - started
        seconds, reading = [], []
        for repeat in range(repeats):
            started = time.perf_counter()
            read_corpus(predictions, scheme)
            reading.append(time.perf_counter() - started)
            started = time.perf_counter()
            out = build_coverage(
                predictions, scheme, lambda corpus: fit_corrections([held_out], scheme, N_RESAMPLES, SEED),
                "synthetic", Path(directory) / f"report-{repeat}")
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


def simulated_overall(scheme: LabelScheme, seed: int, labelled: bool, shift: float = 0.15, articles: int = 56,
                      n_resamples: int = 200) -> tuple[GroupShares, dict]:
    """One simulated coverage of about `articles` x 7 sentences (the size of the 7 December set), whose tagger's
    rates and shares differ from the labelled text's; corrected with held-out sentences of six other events, or
    with a random sample of 200 of its own sentences when `labelled`."""
    rng = np.random.default_rng(seed)
    k, t = len(scheme.speakers), len(scheme.topics)
    layout = Layout(t, k)
    base = SyntheticTagger.drawn(k, t, seed=seed)
    coverage_tagger = base.shifted(shift, seed=1000 + seed)
    speakers, topics = rng.dirichlet(np.ones(k)), rng.uniform(0.02, 0.4, t)
    features, truth = synthetic_coverage(coverage_tagger, layout, articles, speakers, topics, mean_sentences=7,
                                         seed=seed)
    if labelled:
        calib = synthetic_calibration(coverage_tagger, groups=1, sentences_per_group=200, same_coverage=True,
                                      shares=(speakers, topics), seed=seed)
    else:
        calib = synthetic_calibration(base, groups=6, sentences_per_group=57, shift=shift, seed=seed)
    corrections = fit_corrections([calib], scheme, n_resamples, seed)
    return group_shares(ALL_ARTICLES, features, layout, corrections, n_resamples), truth


@dataclass(frozen=True)
class SharesBenchmark:
    """Simulated coverages: how often the 95% intervals hold the truth, and the mean absolute error of shares."""
    setting: str
    simulations: int
    shift: float
    interval_coverage: float
    raw_error: float
    corrected_error: float


def run_shares_benchmark(simulations: int = 20, shift: float = 0.15) -> list[SharesBenchmark]:
    scheme = load_scheme(ROOT / "configs/labels.yaml")
    results = []
    for setting, labelled in (("held-out sentences of other events", False), ("LABELLED sample of 200", True)):
        inside, total, raw, corrected = 0, 0, [], []
        for seed in range(simulations):
            overall, truth = simulated_overall(scheme, seed, labelled, shift)
            for key in ("speaker", "topic"):
                covered = (overall.low[key] - 1e-9 <= truth[key]) & (truth[key] <= overall.high[key] + 1e-9)
                inside, total = inside + int(covered.sum()), total + len(covered)
                raw.append(float(np.abs(overall.raw[key] - truth[key]).mean()))
                corrected.append(float(np.abs(overall.estimate[key] - truth[key]).mean()))
        results.append(SharesBenchmark(setting, simulations, shift, inside / total, float(np.mean(raw)),
                                       float(np.mean(corrected))))
    return results


def format_shares(results: list[SharesBenchmark]) -> str:
    lines = [f"simulated coverages ({results[0].simulations} each, 56 articles, rates shifted by {results[0].shift}):"]
    for r in results:
        lines.append(f"  {r.setting:<38} 95% intervals hold the truth {100 * r.interval_coverage:.1f}%; mean abs "
                     f"error raw {100 * r.raw_error:.2f} pts, corrected {100 * r.corrected_error:.2f} pts")
    return "\n".join(lines)
