"""Source scores of a checkpoint (`make evaluate`, `make report`): the extractor gated by the speakers it predicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import groupby

from train.sources.extract import SentenceSources, SourceExtractor
from train.sources.metrics import SourceScores, score_sources
from train.sources.schema import Source


@dataclass(frozen=True)
class SourceEvaluation:
    roles_version: str  # the roles table the extractor resolved names with
    overall: SourceScores
    by_source_kind: dict[str, SourceScores]  # seed, authored, imported

    def to_dict(self) -> dict:
        return asdict(self)


def sources_by_article(extractor: SourceExtractor, articles: list[str], texts: list[str], speakers: list[str],
                       confidences: list[float] | None = None) -> list[SentenceSources]:
    """The extractor's output for sentences in article order (each article's sentences consecutive)."""
    results: list[SentenceSources] = []
    position = 0
    for _, group in groupby(articles):
        n = len(list(group))
        part = slice(position, position + n)
        results.extend(extractor.extract(texts[part], speakers[part],
                                         confidences=confidences[part] if confidences is not None else None))
        position += n
    return results


def evaluate_sources(extractor: SourceExtractor, articles: list[str], texts: list[str], speakers: list[str],
                     confidences: list[float], gold: list[tuple[Source, ...]], quotes: list[str],
                     gold_speakers: list[str], kinds: list[str] | None) -> tuple[SourceEvaluation, list[SentenceSources]]:
    """Scores overall and per source kind, and the predicted sources of every sentence."""
    found = sources_by_article(extractor, articles, texts, speakers, confidences)

    def scores(rows: list[int]) -> SourceScores:
        return score_sources([gold[i] for i in rows], [quotes[i] for i in rows], [gold_speakers[i] for i in rows],
                             [list(found[i].sources) for i in rows], [found[i].quote for i in rows])

    everything = list(range(len(texts)))
    by_kind = {kind: scores([i for i in everything if kinds[i] == kind]) for kind in sorted(set(kinds or []))}
    return SourceEvaluation(extractor.roles.version, scores(everything), by_kind), found
