"""Agreement on sources and quote kinds between two labellings (data/GUIDELINES.md §9)."""

import json
import shutil

import pytest
from sklearn.metrics import cohen_kappa_score

from tests.helpers import ROOT
from train.cli.agreement import main
from train.data.agreement import read_labelling, source_agreement, unapplied_rulings
from train.data.scheme import load_scheme

SCHEME = load_scheme(ROOT / "configs/labels.yaml")
ADJUDICATION = ROOT / "data/agreement/adjudication.jsonl"


def labelled(index: int, names: list[str], quote: str) -> dict:
    sources = [{"name": n, "mention": None, "start": None, "end": None, "type": "person", "relayed_by": None}
               for n in names]
    return {"article": "a", "index": index, "text": "x", "topics": [], "speaker": "none", "sources": sources,
            "quote": quote}


def keyed(records):
    return {(r["article"], r["index"]): r for r in records}


def test_known_source_disagreements_give_the_known_figures():
    first = [labelled(0, ["Дмитрий Песков"], "direct"), labelled(1, ["Владимир Путин", "Джо Байден"], "indirect"),
             labelled(2, [], "none"), labelled(3, ["Кремль"], "indirect")]
    second = [labelled(0, ["Дмитрий Песков"], "indirect"), labelled(1, ["Джо Байден", "Владимир Путин"], "indirect"),
              labelled(2, [], "none"), labelled(3, [], "none")]
    result = source_agreement(keyed(first), keyed(second))
    assert result.sentences == 4 and result.attributed == 3
    assert result.name_f1 == pytest.approx(2 * 3 / (4 + 3))  # 3 shared names of 4 + 3 listed
    assert result.first_source_agreement == pytest.approx(1 / 3)  # only sentence 0 names the same first source
    assert result.quote_accuracy == pytest.approx(0.5)
    assert result.quote_kappa == pytest.approx(cohen_kappa_score(
        ["direct", "indirect", "none", "indirect"], ["indirect", "indirect", "none", "none"]))
    assert [d["index"] for d in result.disagreements] == [0, 1, 3]  # the order of sentence 1's sources differs
    assert result.disagreements[1]["second"]["sources"][0]["name"] == "Джо Байден"


def test_a_mention_span_alone_is_a_disagreement():
    first, second = labelled(0, ["Энтони Блинкен"], "indirect"), labelled(0, ["Энтони Блинкен"], "indirect")
    second["sources"][0].update(mention="x", start=0, end=1)
    result = source_agreement(keyed([first]), keyed([second]))
    assert result.name_f1 == 1.0 and [d["index"] for d in result.disagreements] == [0]


def test_a_labelling_without_sources_gives_no_source_agreement():
    plain = {k: v for k, v in labelled(0, [], "none").items() if k not in ("sources", "quote")}
    assert source_agreement(keyed([labelled(0, [], "none")]), keyed([plain])) is None


def test_make_agreement_notes_a_second_side_without_sources_and_scores_one_with_them(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    with_sources, without = tmp_path / "with", tmp_path / "without"
    shutil.copytree(ROOT / "data/agreement/first", with_sources)  # the first side carries sources
    without.mkdir()
    for path in with_sources.glob("*.jsonl"):
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        (without / path.name).write_text("".join(json.dumps({k: v for k, v in r.items() if k not in ("sources", "quote")},
                                                            ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    assert main(["--second", str(without)]) == 0
    assert "sources: skipped" in capsys.readouterr().out
    assert main(["--second", str(with_sources)]) == 0
    out = capsys.readouterr().out
    assert "sources: name micro-F1 1.000, first source agreement 1.000" in out and "accuracy 1.000" in out


def source_ruling(record: dict, final: dict) -> str:
    return json.dumps({"article": record["article"], "index": record["index"], "text": record["text"],
                       "first": final, "second": final, "final": final, "reason": "test"}, ensure_ascii=False)


def test_a_source_ruling_that_differs_from_gold_is_reported(tmp_path):
    gold = labelled(0, ["Дмитрий Песков", "Юрий Ушаков"], "indirect")
    agrees = {"sources": gold["sources"], "quote": "indirect"}
    reordered = {"sources": gold["sources"][::-1], "quote": "indirect"}
    relayed = {"sources": [dict(s, relayed_by="Кремль") for s in gold["sources"]], "quote": "indirect"}
    quoted = {"sources": gold["sources"], "quote": "direct"}
    rulings = tmp_path / "adjudication.jsonl"
    rulings.write_text("".join(source_ruling(gold, f) + "\n" for f in (agrees, reordered, relayed, quoted)),
                       encoding="utf-8")
    problems = unapplied_rulings(rulings, keyed([gold]))
    assert [p.split(": ")[0] for p in problems] == [f"{rulings}:{n}" for n in (2, 3, 4)]
    assert all("gold label of a:0 differs from the ruling (sources/quote)" in p for p in problems)


def test_a_ruling_on_nothing_or_on_a_sentence_not_in_gold_is_reported(tmp_path):
    gold = labelled(0, [], "none")
    rulings = tmp_path / "adjudication.jsonl"
    rulings.write_text(source_ruling(gold, {}) + "\n" + source_ruling(dict(gold, index=9), {"sources": [], "quote": "none"})
                       + "\n", encoding="utf-8")
    first, second = unapplied_rulings(rulings, keyed([gold]))
    assert first.startswith(f"{rulings}:1: the ruling on a:0 carries neither")
    assert second == f"{rulings}:2: gold label of a:9 is missing from data/annotations"


def test_the_real_source_rulings_cover_every_source_disagreement_and_are_applied():
    first = read_labelling(ROOT / "data/agreement/first", SCHEME)
    second = read_labelling(ROOT / "data/agreement/second", SCHEME)
    rulings = [json.loads(line) for line in ADJUDICATION.read_text(encoding="utf-8").splitlines()]
    ruled = {(r["article"], r["index"]): (r["first"], r["second"]) for r in rulings if "sources" in r["final"]}
    disagreements = source_agreement(first, second).disagreements
    assert ruled == {(d["article"], d["index"]): (d["first"], d["second"]) for d in disagreements}
    assert unapplied_rulings(ADJUDICATION, read_labelling(ROOT / "data/annotations", SCHEME)) == []


def test_make_agreement_reports_a_source_ruling_not_in_gold(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    lines = ADJUDICATION.read_text(encoding="utf-8").splitlines()
    number = next(n for n, line in enumerate(lines, start=1) if "sources" in json.loads(line)["final"])
    changed = json.loads(lines[number - 1])
    changed["final"]["sources"][0]["name"] = "Кто-то другой"
    lines[number - 1] = json.dumps(changed, ensure_ascii=False)
    rulings = tmp_path / "adjudication.jsonl"
    rulings.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["--adjudication", str(rulings)]) == 2
    assert f"{rulings}:{number}: gold label of {changed['article']}:{changed['index']} differs from the ruling " \
           "(sources/quote)" in capsys.readouterr().err
