"""Sources in the annotation loop: the Label Studio interface, pre-annotations and import of span labels."""

import json
import xml.etree.ElementTree as ET

from tests.helpers import ROOT
from train.annotation.importer import import_export
from train.annotation.label_studio import labeling_config, source_results, sources_from_result
from train.data.scheme import load_scheme
from train.sources.schema import QUOTE_KINDS, SOURCE_TYPES

SCHEME = load_scheme(ROOT / "configs/labels.yaml")
TEXT = "Путин, по словам Ушакова, остался доволен беседой."
USHAKOV = {"name": "Юрий Ушаков", "mention": "Ушакова", "start": 17, "end": 24, "type": "person", "relayed_by": None}
PUTIN = {"name": "Владимир Путин", "mention": "Путин", "start": 0, "end": 5, "type": "person",
         "relayed_by": "Юрий Ушаков"}


def test_the_interface_has_source_spans_with_names_and_the_quote_kind():
    root = ET.fromstring(labeling_config(ROOT / "configs/labels.yaml"))
    labels = next(e for e in root.iter("Labels") if e.get("name") == "source")
    assert [label.get("value") for label in labels] == list(SOURCE_TYPES) and labels.get("toName") == "text"
    fields = {e.get("name"): e for e in root.iter("TextArea")}
    assert fields["source_name"].get("perRegion") == "true" and fields["relayed_by"].get("perRegion") == "true"
    assert "unnamed_sources" in fields
    rank = next(e for e in root.iter("Number") if e.get("name") == "source_rank")
    assert rank.get("perRegion") == "true" and rank.get("toName") == "text"
    quote = next(e for e in root.iter("Choices") if e.get("name") == "quote")
    assert [c.get("value") for c in quote] == list(QUOTE_KINDS)


def test_pre_annotated_sources_come_back_in_their_order_by_rank():
    continued = {"name": "Кремль", "mention": None, "start": None, "end": None, "type": "organization",
                 "relayed_by": None}
    result = source_results([USHAKOV, PUTIN, continued], "indirect")
    # Ушаков is the main source though Путин comes first in the text: the rank keeps the order.
    assert sources_from_result(result) == ([USHAKOV, PUTIN, continued], "indirect")
    unranked = [region for region in result if region.get("from_name") != "source_rank"]
    assert sources_from_result(unranked) == ([PUTIN, USHAKOV, continued], "indirect")
    # An annotator who ranks only the main source: the others follow in the order of the text.
    ushakov_main = [*unranked, {"id": "source0", "from_name": "source_rank", "value": {"number": 1}}]
    assert sources_from_result(ushakov_main)[0] == [USHAKOV, PUTIN, continued]
    assert sources_from_result([{"from_name": "speaker", "value": {"choices": ["none"]}}]) is None


def task(result: list[dict]) -> dict:
    return {"id": 7, "data": {"article": "a1", "index": 0, "text": TEXT, "context": ""},
            "annotations": [{"id": 1, "result": [{"from_name": "speaker", "type": "choices",
                                                  "value": {"choices": ["putin"]}}, *result]}]}


def test_import_carries_the_sources_back_and_validates_them(tmp_path):
    export = tmp_path / "export.json"
    export.write_text(json.dumps([task(source_results([PUTIN], "indirect"))], ensure_ascii=False), encoding="utf-8")
    result = import_export(export, tmp_path / "annotations", "imported", SCHEME)
    assert result.problems == []
    [record] = result.records
    assert record["sources"] == [PUTIN] and record["quote"] == "indirect"
    shifted = source_results([{**PUTIN, "start": 1, "end": 6}], "indirect")
    export.write_text(json.dumps([task(shifted)], ensure_ascii=False), encoding="utf-8")
    result = import_export(export, tmp_path / "annotations", "again", SCHEME)
    assert result.records == [] and len(result.problems) == 1
    assert "task 7" in result.problems[0] and "differs from the text at 1..6" in result.problems[0]
