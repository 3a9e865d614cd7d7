"""Agreement figures: kappa and micro-F1 from two labellings, and the adjudication check."""

from __future__ import annotations

import json

import pytest
from sklearn.metrics import cohen_kappa_score

from tests.helpers import ROOT
from train.cli.agreement import main
from train.data.agreement import agreement, read_labelling
from train.data.annotations import DataError
from train.data.scheme import load_scheme

SCHEME = load_scheme(ROOT / "configs/labels.yaml")


def record(index: int, topics: list[str], speaker: str) -> dict:
    return {"article": "a", "index": index, "text": f"s{index}", "topics": topics, "speaker": speaker}


def as_keys(records: list[dict]) -> dict:
    return {(r["article"], r["index"]): r for r in records}


def test_identical_labellings_agree_perfectly():
    records = [record(0, ["nato"], "putin"), record(1, [], "none"), record(2, ["iran", "summit"], "both")]
    result = agreement(as_keys(records), as_keys(records), SCHEME)
    assert result.speaker_kappa == pytest.approx(1.0) and result.topic_micro_f1 == pytest.approx(1.0)
    assert result.disagreements == []


def test_known_disagreements_give_the_known_figures():
    first = [record(0, ["nato"], "putin"), record(1, ["nato"], "none"), record(2, ["iran"], "both"),
             record(3, [], "none")]
    second = [record(0, ["nato"], "putin"), record(1, [], "none"), record(2, ["iran"], "putin"),
              record(3, [], "none")]
    result = agreement(as_keys(first), as_keys(second), SCHEME)
    expected_kappa = cohen_kappa_score(["putin", "none", "both", "none"], ["putin", "none", "putin", "none"])
    assert result.speaker_kappa == pytest.approx(expected_kappa)
    assert result.topic_micro_f1 == pytest.approx(2 * 2 / (2 * 2 + 1))  # tp=2, fn=1 (nato dropped), fp=0
    assert [(d["index"]) for d in result.disagreements] == [1, 2]


def test_labellings_of_different_sentences_are_refused():
    with pytest.raises(DataError, match="different sentences"):
        agreement(as_keys([record(0, [], "none")]), as_keys([record(1, [], "none")]), SCHEME)


def test_make_agreement_reproduces_the_figures_and_checks_the_rulings(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main([]) == 0
    out = capsys.readouterr().out
    first = read_labelling(ROOT / "data/agreement/first", SCHEME)
    assert f"{len({k[0] for k in first})} articles, {len(first)} sentences" in out and "kappa" in out
    rulings = tmp_path / "adjudication.jsonl"
    lines = (ROOT / "data/agreement/adjudication.jsonl").read_text(encoding="utf-8").splitlines()
    changed = json.loads(lines[0])
    changed["final"]["speaker"] = "biden" if changed["final"]["speaker"] != "biden" else "putin"
    rulings.write_text("\n".join([json.dumps(changed, ensure_ascii=False), *lines[1:]]) + "\n", encoding="utf-8")
    assert main(["--adjudication", str(rulings)]) == 2
    assert f"{rulings}:1: gold label of" in capsys.readouterr().err
