"""The optional `sources` and `quote` annotation fields: validation and the built dataset."""

import json

import pytest

from tests.helpers import ROOT
from train.data.annotations import validate_record
from train.data.build import build_dataset
from train.data.scheme import load_scheme

SCHEME = load_scheme(ROOT / "configs/labels.yaml")
TEXT = "«Мы надеемся, что до этого не дойдет», — добавил Ушаков."
USHAKOV = {"name": "Юрий Ушаков", "mention": "Ушаков", "start": TEXT.index("Ушаков"),
           "end": TEXT.index("Ушаков") + 6, "type": "person", "relayed_by": None}


def record(**changes):
    base = {"article": "a", "index": 0, "text": TEXT, "topics": [], "speaker": "russia_official",
            "sources": [USHAKOV], "quote": "direct"}
    return {**base, **changes}


def test_a_labelled_source_and_a_sentence_without_source_fields_are_valid():
    assert validate_record(record(), "f.jsonl:1", SCHEME) == []
    assert validate_record(record(sources=[{**USHAKOV, "mention": None, "start": None, "end": None}]),
                           "f.jsonl:1", SCHEME) == []
    plain = {k: v for k, v in record().items() if k not in ("sources", "quote")}
    assert validate_record(plain, "f.jsonl:1", SCHEME) == []


BAD = {
    "offsets outside the text": ({**USHAKOV, "start": 50, "end": 90}, "direct", "outside the text"),
    "mention differs from the text": ({**USHAKOV, "start": 0, "end": 6}, "direct", "differs from the text at 0..6"),
    "unknown type": ({**USHAKOV, "type": "official"}, "direct", "type 'official' must be one of"),
    "anonymous with a free name": ({**USHAKOV, "type": "anonymous", "name": "аналитики"}, "direct",
                                   "must be named one of"),
    "half an offset": ({**USHAKOV, "end": None}, "direct", "needs mention"),
    "unknown quote kind": (USHAKOV, "partial", "quote 'partial' must be one of"),
    "quote none with a source": (USHAKOV, "none", "exactly when it has no sources"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_source_label_is_one_line_naming_the_place_and_the_fix(case):
    source, quote, message = BAD[case]
    errors = validate_record(record(sources=[source], quote=quote), "f.jsonl:7", SCHEME)
    assert len(errors) == 1 and errors[0].startswith("f.jsonl:7: ") and message in errors[0]


def test_sources_without_quote_and_a_duplicate_name_are_refused():
    without_quote = {k: v for k, v in record().items() if k != "quote"}
    assert "go together" in validate_record(without_quote, "f:1", SCHEME)[0]
    assert "listed twice" in validate_record(record(sources=[USHAKOV, USHAKOV]), "f:1", SCHEME)[0]


def test_the_build_carries_sources_and_quote(project):
    path = project / "data/annotations/004_7b4b3a878ca4dd7e.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first.pop("sources", None), first.pop("quote", None)  # one record without the fields: quote "" in the build
    lines[0] = json.dumps(first, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    from train.config import load_config
    dataset = build_dataset(load_config(project / "configs/cpu.yaml").data, force=True).dataset
    rows = {r["id"]: r for split in dataset for r in dataset[split]}
    assert rows["004_7b4b3a878ca4dd7e:0"]["quote"] == ""
    labelled = rows["004_7b4b3a878ca4dd7e:9"]
    gold = json.loads(lines[9])
    assert labelled["quote"] == gold["quote"]
    assert [s["name"] for s in labelled["sources"]] == [s["name"] for s in gold["sources"]]


def test_the_corpus_gives_sources_exactly_to_the_sentences_with_a_speaker():
    """data/GUIDELINES.md §9.1: a sentence has sources exactly when its speaker is not `none`."""
    mismatched = []
    for path in sorted((ROOT / "data/annotations").glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            gold = json.loads(line)
            if "sources" not in gold or (gold["speaker"] == "none") != (not gold["sources"]):
                mismatched.append(f"{path.name}:{number}")
    assert mismatched == []
