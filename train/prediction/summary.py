"""Sentence counts by topic, speaker and topic x speaker: overall, per outlet and per article."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from train.modeling.checkpoint import write_json
from train.prediction.writers import read_rows


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
