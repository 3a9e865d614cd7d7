"""Agreement on sources and quote kinds between two labellings (data/GUIDELINES.md §9)."""

import json
import shutil

import pytest
from sklearn.metrics import cohen_kappa_score

from tests.helpers import ROOT
from train.cli.agreement import main
from train.data.agreement import source_agreement


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
