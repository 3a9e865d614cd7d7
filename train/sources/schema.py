"""The source and quote labels of one sentence (data/GUIDELINES.md §9), shared by annotations and predictions."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SOURCE_TYPES = ("person", "organization", "anonymous")
QUOTE_KINDS = ("direct", "indirect", "none")
# The fixed names of anonymous sources: an analyst counts "эксперты" across outlets, not each phrasing.
ANONYMOUS_NAMES = ("источники", "эксперты", "СМИ", "наблюдатели")
SOURCE_FIELDS = ("name", "mention", "start", "end", "type", "relayed_by")


@dataclass(frozen=True)
class Source:
    name: str  # canonical, in the nominative
    mention: str | None  # the words of the sentence that name it; None when the sentence does not (a continued quote)
    start: int | None  # character offsets of the mention in the sentence
    end: int | None
    type: str  # one of SOURCE_TYPES
    relayed_by: str | None = None  # canonical name of the institution or person that relays the statement

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_problems(value: Any, text: str, where: str) -> list[str]:
    """What is wrong with one `sources` entry of a sentence, as `where: ...` lines (empty when it is valid)."""
    if not isinstance(value, dict) or set(value) - set(SOURCE_FIELDS) or not {"name", "type"} <= set(value):
        return [f"{where}: each source must be an object with name, type and optionally mention, start, end, "
                f"relayed_by (got {value!r})"]
    errors = []
    name, kind = value["name"], value["type"]
    if not isinstance(name, str) or not name.strip():
        errors.append(f"{where}: source name must be the canonical name, e.g. \"Дмитрий Песков\"")
    if kind not in SOURCE_TYPES:
        errors.append(f"{where}: source type {kind!r} must be one of {', '.join(SOURCE_TYPES)}")
    elif kind == "anonymous" and name not in ANONYMOUS_NAMES:
        errors.append(f"{where}: anonymous source {name!r} must be named one of {', '.join(ANONYMOUS_NAMES)}")
    relayed = value.get("relayed_by")
    if relayed is not None and (not isinstance(relayed, str) or not relayed.strip()):
        errors.append(f"{where}: relayed_by must be a canonical name or null")
    mention, start, end = value.get("mention"), value.get("start"), value.get("end")
    if mention is None and start is None and end is None:
        return errors  # not named in this sentence: a continued quote, a passive joint finding
    offsets_ok = all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end))
    if not isinstance(mention, str) or not offsets_ok:
        errors.append(f"{where}: source {name!r} needs mention (a string) with start and end (integers), or all "
                      "three null when the sentence does not name it")
    elif not 0 <= start < end <= len(text):
        errors.append(f"{where}: source {name!r} offsets {start}..{end} are outside the text (0..{len(text)})")
    elif text[start:end] != mention:
        errors.append(f"{where}: source {name!r} mention {mention!r} differs from the text at {start}..{end} "
                      f"({text[start:end]!r}); fix the offsets")
    return errors


def sources_from_record(record: dict) -> list[Source]:
    """The validated `sources` of an annotation record as Source objects ([] when it carries none)."""
    return [Source(s["name"], s.get("mention"), s.get("start"), s.get("end"), s["type"], s.get("relayed_by"))
            for s in record.get("sources") or []]
