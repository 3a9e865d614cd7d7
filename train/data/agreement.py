"""Inter-annotator agreement between two independent labellings of the same articles (pure functions).

Speaker: Cohen's kappa (chance-corrected, one label per sentence). Topics: micro-F1
of one annotator against the other, which is symmetric for micro-averaging. Sources
(data/GUIDELINES.md §9), where both labellings carry them: micro-F1 over the canonical names
of each sentence, agreement on the first (main) source, and the quote kind's accuracy and kappa.
The figures always compare the two annotators as they labelled; the adjudicated labels live in
data/annotations, which `unapplied_rulings` checks against data/agreement/adjudication.jsonl.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import cohen_kappa_score, f1_score

from train.data.annotations import DataError, read_lines, read_records
from train.data.scheme import LabelScheme
from train.sources.schema import SOURCE_FIELDS


@dataclass
class Agreement:
    articles: int
    sentences: int
    speaker_kappa: float
    speaker_accuracy: float
    topic_micro_f1: float
    topic_f1: dict[str, float]
    disagreements: list[dict]


def read_labelling(directory: Path, scheme: LabelScheme) -> dict[tuple[str, int], dict]:
    """Every record of every *.jsonl in `directory`, by (article, index), validated."""
    records, errors = {}, []
    for path in sorted(directory.glob("*.jsonl")):
        valid, problems = read_records(path, scheme)
        errors.extend(problems)
        records.update(((r["article"], r["index"]), r) for _, r in valid)
    if errors:
        raise DataError(errors)
    return records


def agreement(first: dict[tuple[str, int], dict], second: dict[tuple[str, int], dict],
              scheme: LabelScheme) -> Agreement:
    """Agreement on the sentences both labelled; every other sentence is an error (they must cover the same)."""
    if set(first) != set(second):
        only = sorted(set(first) ^ set(second))[:5]
        raise DataError([f"the two labellings cover different sentences, e.g. {only}; label the same whole articles"])
    keys = sorted(first)
    speakers_a = [first[k]["speaker"] for k in keys]
    speakers_b = [second[k]["speaker"] for k in keys]
    topics_a = np.array([scheme.encode_topics(first[k]["topics"]) for k in keys])
    topics_b = np.array([scheme.encode_topics(second[k]["topics"]) for k in keys])
    disagreements = [{"article": k[0], "index": k[1], "text": first[k]["text"],
                      "first": {"topics": sorted(first[k]["topics"]), "speaker": first[k]["speaker"]},
                      "second": {"topics": sorted(second[k]["topics"]), "speaker": second[k]["speaker"]}}
                     for k in keys if first[k]["speaker"] != second[k]["speaker"]
                     or set(first[k]["topics"]) != set(second[k]["topics"])]
    return Agreement(
        articles=len({k[0] for k in keys}), sentences=len(keys),
        speaker_kappa=float(cohen_kappa_score(speakers_a, speakers_b)),
        speaker_accuracy=float(np.mean([a == b for a, b in zip(speakers_a, speakers_b)])),
        topic_micro_f1=float(f1_score(topics_a, topics_b, average="micro", zero_division=1.0)),
        topic_f1={t: float(f1_score(topics_a[:, i], topics_b[:, i], zero_division=1.0))
                  for i, t in enumerate(scheme.topics)},
        disagreements=disagreements)


@dataclass
class SourceAgreement:
    sentences: int  # sentences both labellings give sources and a quote kind
    name_f1: float  # micro-F1 over (sentence, canonical name) pairs; symmetric
    first_source_agreement: float  # share, among sentences either side attributes, with the same first name
    attributed: int  # those sentences
    quote_accuracy: float
    quote_kappa: float
    disagreements: list[dict]  # sentences whose sources_and_quote differ, in the adjudication record's shape


def sources_and_quote(labels: dict) -> dict:
    """The part of a record (or of a ruling's first/second/final) that a source ruling decides: every field of every
    source in order, the mention span included (the extractor's mention F1 is scored against it), and the quote kind."""
    return {"sources": [{field: source.get(field) for field in SOURCE_FIELDS} for source in labels["sources"]],
            "quote": labels["quote"]}


def source_agreement(first: dict[tuple[str, int], dict], second: dict[tuple[str, int], dict]) -> SourceAgreement | None:
    """Agreement on sources and quote kinds over the sentences both sides labelled with them; None if there are none
    (a labelling made before the sources scheme)."""
    keys = sorted(k for k in set(first) & set(second) if "quote" in first[k] and "quote" in second[k])
    if not keys:
        return None
    names_a = [[s["name"] for s in first[k]["sources"]] for k in keys]
    names_b = [[s["name"] for s in second[k]["sources"]] for k in keys]
    both = sum(len(set(a) & set(b)) for a, b in zip(names_a, names_b))
    total = sum(len(set(a)) + len(set(b)) for a, b in zip(names_a, names_b))
    attributed = [(a, b) for a, b in zip(names_a, names_b) if a or b]
    same_first = sum(bool(a) and bool(b) and a[0] == b[0] for a, b in attributed)
    quotes_a = [first[k]["quote"] for k in keys]
    quotes_b = [second[k]["quote"] for k in keys]
    return SourceAgreement(
        sentences=len(keys), name_f1=2 * both / total if total else 1.0,
        first_source_agreement=same_first / len(attributed) if attributed else 1.0, attributed=len(attributed),
        quote_accuracy=float(np.mean([a == b for a, b in zip(quotes_a, quotes_b)])),
        # kappa is undefined (nan) when both sides use a single kind throughout; identical labels then agree fully.
        quote_kappa=float(cohen_kappa_score(quotes_a, quotes_b)) if len(set(quotes_a) | set(quotes_b)) > 1 else 1.0,
        disagreements=[{"article": k[0], "index": k[1], "text": first[k]["text"],
                        "first": sources_and_quote(first[k]), "second": sources_and_quote(second[k])}
                       for k in keys if sources_and_quote(first[k]) != sources_and_quote(second[k])])


def ruling_mismatch(final: dict, record: dict) -> str | None:
    """What of the ruling's `final` the gold record does not carry ('topics/speaker', 'sources/quote'), or None.
    A topic/speaker ruling carries topics and speaker, a source ruling sources and quote; one may carry both."""
    parts = []
    if "speaker" in final and (record["speaker"] != final["speaker"] or set(record["topics"]) != set(final["topics"])):
        parts.append("topics/speaker")
    if "sources" in final and ("quote" not in record or sources_and_quote(record) != sources_and_quote(final)):
        parts.append("sources/quote")
    return ", ".join(parts) or None


def unapplied_rulings(adjudication: Path, gold: dict[tuple[str, int], dict]) -> list[str]:
    """Adjudicated sentences whose gold label in data/annotations differs from the ruling."""
    problems = []
    for number, line in enumerate(read_lines(adjudication), start=1):
        if not line.strip():
            continue
        ruling = json.loads(line)
        at, sentence = f"{adjudication}:{number}", f"{ruling['article']}:{ruling['index']}"
        record, final = gold.get((ruling["article"], ruling["index"])), ruling["final"]
        if not {"speaker", "sources"} & set(final):
            # Such a ruling would otherwise pass unchecked.
            problems.append(f"{at}: the ruling on {sentence} carries neither topics/speaker nor sources/quote in final")
        elif record is None:
            problems.append(f"{at}: gold label of {sentence} is missing from data/annotations")
        elif mismatch := ruling_mismatch(final, record):
            problems.append(f"{at}: gold label of {sentence} differs from the ruling ({mismatch}); "
                            "apply it to data/annotations")
    return problems
