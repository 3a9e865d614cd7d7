"""Who is quoted: the top named sources overall and per outlet, source diversity, direct against indirect speech.

These are counts of what the extractor found (`train/sources/`), not corrected estimates:
there is no labelled sample to measure its errors per name against. Shares are of the
attributed sentences (those naming at least one source), with 95% bootstrap intervals
over articles, as on the rest of the page.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from train.coverage.estimates import percentile_interval, resampled_sums
from train.evaluation.stats import SEED
from train.sources.metrics import SourceScores, first_source_right, score_sources
from train.sources.schema import Source

TOP_OVERALL, TOP_PER_OUTLET = 15, 5
# The speaker classes whose sources are officials; `other` covers experts, media and everyone else.
NOT_OFFICIAL = ("other", "none")


@dataclass
class ArticleSources:
    """One article's attributed sentences: how many, how quoted, and by whom."""
    attributed: int = 0
    direct: int = 0
    indirect: int = 0
    official: int = 0
    names: Counter[str] = field(default_factory=Counter)  # attributed sentences naming each source

    def add(self, sources: list, quote: str, speaker: str) -> None:
        names = {str(s["name"]) for s in sources}
        if not names:
            return
        self.attributed += 1
        self.direct += quote == "direct"
        self.indirect += quote == "indirect"
        self.official += speaker not in NOT_OFFICIAL
        self.names.update(names)


@dataclass(frozen=True)
class SourceShare:
    name: str
    sentences: int
    share: float
    low: float
    high: float


@dataclass(frozen=True)
class GroupSources:
    """A group's (all articles, or an outlet) sources and their diversity."""
    name: str
    attributed: int
    distinct: int
    official_share: float
    concentration: float  # Herfindahl index of the sources' shares: 1 = one voice, near 0 = many
    direct_share: float
    indirect_share: float
    top: list[SourceShare]


def group_sources(name: str, articles: list[ArticleSources], top_n: int, n_resamples: int,
                  seed: int) -> GroupSources:
    total = Counter()
    for article in articles:
        total.update(article.names)
    attributed = sum(a.attributed for a in articles)
    top = [source for source, _ in sorted(total.items(), key=lambda item: (-item[1], item[0]))[:top_n]]
    counts = np.array([[a.attributed, *(a.names[s] for s in top)] for a in articles], dtype=float)
    resampled = resampled_sums(counts, n_resamples, seed) if len(counts) else np.zeros((1, len(top) + 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        low, high = percentile_interval(resampled[:, 1:] / resampled[:, :1])
        shares = np.array([total[s] for s in top]) / attributed if attributed else np.zeros(len(top))
        every = np.array(list(total.values()), dtype=float)
        concentration = float(((every / every.sum()) ** 2).sum()) if every.sum() else float("nan")

    def ratio(part: int) -> float:
        return part / attributed if attributed else float("nan")
    return GroupSources(
        name, attributed, len(total), ratio(sum(a.official for a in articles)), concentration,
        ratio(sum(a.direct for a in articles)), ratio(sum(a.indirect for a in articles)),
        [SourceShare(s, total[s], float(shares[i]), float(low[i]), float(high[i])) for i, s in enumerate(top)])


@dataclass(frozen=True)
class SourceCheck:
    """The extractor measured on labelled sentences of the coverage: the scores, and 95% bootstrap intervals over
    articles for the two shares an analyst leans on."""
    origin: str
    articles: int
    scores: SourceScores
    first_source_interval: tuple[float, float] | None  # sentences whose labelled speaker is not `none` (None: no such)
    none_clean_interval: tuple[float, float] | None  # `none` sentences left without a source


def predicted_source(source: dict) -> Source:
    """A predicted source as a Source; from CSV or Parquet only its name is known."""
    return Source(str(source["name"]), source.get("mention"), source.get("start"), source.get("end"),
                  str(source.get("type") or ""), source.get("relayed_by"))


def source_check(origin: str, articles: list[str], gold: list[list[Source]], gold_quotes: list[str],
                 gold_speakers: list[str], predicted: list[list[Source]], predicted_quotes: list[str],
                 n_resamples: int, seed: int = SEED) -> SourceCheck:
    """Scores of the predicted sources of labelled sentences (aligned lists; `articles` are the resampling unit)."""
    scores = score_sources(gold, gold_quotes, gold_speakers, predicted, predicted_quotes)
    index = {article: i for i, article in enumerate(dict.fromkeys(articles))}
    # per article: attributed sentences, of them with the right first source; none sentences, of them clean
    counts = np.zeros((len(index), 4))
    for article, labels, speaker, guesses in zip(articles, gold, gold_speakers, predicted):
        row = counts[index[article]]
        if speaker == "none":
            row[2:] += (1, not guesses)
        else:
            row[:2] += (1, first_source_right(labels, guesses))
    resampled = resampled_sums(counts, n_resamples, seed)

    def interval(hits: int, of: int) -> tuple[float, float] | None:
        if not counts[:, of].sum():
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            low, high = percentile_interval(resampled[:, hits] / resampled[:, of])
        return float(low), float(high)
    return SourceCheck(origin, len(index), scores, interval(1, 0), interval(3, 2))
