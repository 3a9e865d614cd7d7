"""`train.evaluation.scoring`: scores on the test split or a JSONL file, and a clear error for every bad input."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import make_project, make_untrained_checkpoint
from train.cli.evaluate import main
from train.config import save_config
from train.data.build import build_dataset, load_built
from train.data.scheme import load_scheme
from train.evaluation.scoring import evaluate_checkpoint, jsonl_data
from train.modeling.checkpoint import Checkpoint, write_json

ROOT = Path(__file__).resolve().parents[1]
ANNOTATIONS = ROOT / "data/annotations/004_7b4b3a878ca4dd7e.jsonl"


@pytest.fixture(scope="module")
def test_split_result(untrained_checkpoint, data_config):
    return evaluate_checkpoint(Checkpoint.open(untrained_checkpoint))


@pytest.fixture
def checkpoint_copy(untrained_checkpoint, tmp_path) -> Path:
    return Path(shutil.copytree(untrained_checkpoint, tmp_path / "run"))


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def annotation_records(limit: int = 8) -> list[dict]:
    return [json.loads(line) for line in ANNOTATIONS.read_text(encoding="utf-8").splitlines()[:limit]]


def test_test_split_metrics_have_every_part(test_split_result, data_config):
    result = test_split_result
    test = load_built(data_config)["test"]
    scheme = load_scheme(data_config.labels)
    assert result["n_sentences"] == len(test) == len(result["predictions"])
    assert set(result["topics"]["per_label"]) == set(scheme.topics)
    assert set(result["topics"]["per_label"]["summit"]) == {"precision", "recall", "f1", "support"}
    assert {"micro_f1", "macro_f1"} <= set(result["topics"])
    assert {"accuracy", "macro_f1"} <= set(result["speaker"])
    matrix = np.array(result["speaker"]["confusion_matrix"])
    assert matrix.shape == (len(scheme.speakers),) * 2 and matrix.sum() == len(test)
    assert 0 <= result["speaker_ece"] <= 1
    assert result["sentences_per_second"] > 0 and result["parameters"] > 0
    correct = [p["speaker"] == p["gold_speaker"] for p in result["predictions"]]
    assert result["speaker"]["accuracy"] == pytest.approx(np.mean(correct))
    assert [p["id"] for p in result["predictions"]] == list(test["id"])
    by_kind = result["by_source_kind"]
    assert set(by_kind) == set(test["kind"])
    assert sum(k["n_sentences"] for k in by_kind.values()) == len(test) and "combined" in next(iter(by_kind.values()))


def test_jsonl_contexts_are_the_previous_sentence_of_the_same_article(untrained_checkpoint, tmp_path):
    records = annotation_records(4)
    other = {**records[0], "article": "other", "index": 0}
    shuffled = [records[2], other, records[0], records[3], records[1]]
    scheme = load_scheme(ROOT / "configs/labels.yaml")
    data = jsonl_data(write_jsonl(tmp_path / "outlet.jsonl", shuffled), scheme, untrained_checkpoint)
    assert data.ids == [f"004_7b4b3a878ca4dd7e:{i}" for i in range(4)] + ["other:0"]
    assert data.contexts == ["", records[0]["text"], records[1]["text"], records[2]["text"], ""]
    assert data.outlets == ["outlet"] * 5


def test_cli_scores_a_jsonl_file_and_writes_metrics_beside_the_checkpoint(checkpoint_copy, built_project,
                                                                          tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(built_project)
    data = write_jsonl(tmp_path / "other_outlet.jsonl", annotation_records(8))
    assert main(["--model", str(checkpoint_copy), "--data", str(data)]) == 0
    out = checkpoint_copy / "eval" / "other_outlet" / "metrics.json"
    metrics = json.loads(out.read_text(encoding="utf-8"))
    assert metrics["n_sentences"] == 8 and "predictions" not in metrics
    predictions = [json.loads(line) for line in (out.parent / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 8
    assert str(out) in capsys.readouterr().out


def test_cli_on_the_test_split_matches_the_function(untrained_checkpoint, built_project, test_split_result,
                                                    tmp_path, monkeypatch):
    monkeypatch.chdir(built_project)
    out = tmp_path / "metrics.json"
    assert main(["--model", str(untrained_checkpoint), "--out", str(out)]) == 0
    metrics = json.loads(out.read_text(encoding="utf-8"))
    assert metrics["combined"] == pytest.approx(test_split_result["combined"])
    assert metrics["topics"] == test_split_result["topics"]


def run_failing(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    return err


def test_unknown_topic_names_the_line_and_the_checkpoint(checkpoint_copy, built_project, tmp_path, monkeypatch,
                                                         capsys):
    monkeypatch.chdir(built_project)
    records = annotation_records(3)
    records[1]["topics"] = ["weather"]
    data = write_jsonl(tmp_path / "bad.jsonl", records)
    err = run_failing(["--model", str(checkpoint_copy), "--data", str(data)], capsys)
    assert f"{data}:2: unknown topic 'weather'" in err and f"(checkpoint {checkpoint_copy})" in err
    assert not (checkpoint_copy / "eval").exists()


@pytest.mark.parametrize("field, value, message", [
    ("topics", ["nato", "nato"], "a topic is listed twice"),
    ("article", "", "'article' must be a non-empty string"),
])
def test_evaluate_rejects_what_make_data_rejects(checkpoint_copy, built_project, tmp_path, monkeypatch, capsys,
                                                 field, value, message):
    monkeypatch.chdir(built_project)
    records = annotation_records(2)
    records[1][field] = value
    data = write_jsonl(tmp_path / "bad.jsonl", records)
    assert f"{data}:2: {message}" in run_failing(["--model", str(checkpoint_copy), "--data", str(data)], capsys)


def test_unknown_speaker_and_empty_file(checkpoint_copy, built_project, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(built_project)
    records = annotation_records(2)
    records[0]["speaker"] = "merkel"
    data = write_jsonl(tmp_path / "bad.jsonl", records)
    assert f"{data}:1: unknown speaker 'merkel'" in run_failing(["--model", str(checkpoint_copy), "--data",
                                                                  str(data)], capsys)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    assert f"{empty}: no labelled sentences" in run_failing(["--model", str(checkpoint_copy), "--data", str(empty)],
                                                            capsys)
    assert not (checkpoint_copy / "eval").exists()


def test_incomplete_checkpoint(checkpoint_copy, built_project, monkeypatch, capsys):
    monkeypatch.chdir(built_project)
    (checkpoint_copy / "model.safetensors").unlink()
    err = run_failing(["--model", str(checkpoint_copy)], capsys)
    assert str(checkpoint_copy) in err and "model.safetensors" in err


def test_checkpoint_from_another_label_scheme(checkpoint_copy, built_project, monkeypatch, capsys):
    monkeypatch.chdir(built_project)
    config = json.loads((checkpoint_copy / "config.json").read_text(encoding="utf-8"))
    config["topics"] = [*config["topics"][:-1], "weather"]
    (checkpoint_copy / "config.json").write_text(json.dumps(config), encoding="utf-8")
    err = run_failing(["--model", str(checkpoint_copy)], capsys)
    assert str(checkpoint_copy) in err and "labels differ" in err


def test_a_run_is_scored_on_its_own_test_split_and_refused_once_it_cannot_be_rebuilt(tiny_encoder, tmp_path, capsys):
    project = make_project(tmp_path / "project")
    run = make_untrained_checkpoint(tmp_path / "run", tiny_encoder, project=project)
    config = Checkpoint.open(run).train_config
    default_test_ids = list(load_built(config.data)["test"]["id"])
    seven = dataclasses.replace(config, data=dataclasses.replace(config.data, seed=7))  # trained with data.seed=7
    save_config(seven, run / "train_config.yaml")
    write_json(run / "dataset.json", {"fingerprint": build_dataset(seven.data).fingerprint})
    build_dataset(config.data)  # the default config's build is the one on disk now
    scored = [p["id"] for p in evaluate_checkpoint(Checkpoint.open(run))["predictions"]]
    assert scored == list(load_built(seven.data)["test"]["id"]) and scored != default_test_ids

    annotations = project / "data/annotations/004_7b4b3a878ca4dd7e.jsonl"
    records = [json.loads(line) for line in annotations.read_text(encoding="utf-8").splitlines()]
    records[0]["topics"] = ["nato"] if records[0]["topics"] != ["nato"] else []
    write_jsonl(annotations, records)  # the annotations changed after training
    assert main(["--model", str(run)]) == 2
    err = capsys.readouterr().err
    assert "its test split can no longer be rebuilt" in err and "--data file.jsonl" in err
