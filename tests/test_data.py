import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT, make_project
from train.cli.data import main
from train.config import load_config
from train.data.annotations import DataError, load_articles
from train.data.build import build_dataset, fingerprint_inputs, floor_shortfalls
from train.data.scheme import load_scheme
from train.data.segment import split_sentences
from train.data.splits import assign_groups, connected_groups

SEED_SENTENCE_COUNTS = {"000_6121d04cb6a2ecdd": 40, "004_7b4b3a878ca4dd7e": 16}


def corpus_size(root: Path = ROOT) -> int:
    return sum(len(p.read_text(encoding="utf-8").splitlines()) for p in (root / "data/annotations").glob("*.jsonl"))


def data_config(project: Path):
    return load_config(project / "configs/cpu.yaml").data


def annotation_file(project: Path) -> Path:
    return project / "data/annotations/004_7b4b3a878ca4dd7e.jsonl"


def rewrite_line(path: Path, number: int, change) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[number - 1] = change(lines[number - 1])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def set_field(field, value):
    def change(line):
        record = json.loads(line)
        record[field] = value
        return json.dumps(record, ensure_ascii=False)
    return change


def test_scheme_has_exactly_the_agreed_ids():
    scheme = load_scheme(ROOT / "configs/labels.yaml")
    assert scheme.topics == ("summit", "ukraine", "nato", "sanctions", "strategic_stability", "cyber", "iran",
                             "diplomacy", "relations", "history")
    assert scheme.speakers == ("putin", "biden", "both", "russia_official", "us_official", "other", "none")


def test_label_encoding_round_trips():
    scheme = load_scheme(ROOT / "configs/labels.yaml")
    for topics in ([], ["nato"], ["ukraine", "sanctions", "history"]):
        assert scheme.decode_topics(scheme.encode_topics(topics)) == [t for t in scheme.topics if t in topics]
    for speaker in scheme.speakers:
        assert scheme.decode_speaker(scheme.encode_speaker(speaker)) == speaker
    with pytest.raises(KeyError, match="unknown topic"):
        scheme.encode_topics(["weather"])


def test_segmentation_of_the_seeds_is_stable():
    articles = load_articles(ROOT / "seeds/articles.yaml")
    seeds = {a: len(article.sentences) for a, article in articles.items() if article.kind == "seed"}
    assert seeds == SEED_SENTENCE_COUNTS
    sentences = split_sentences((ROOT / "seeds/004_7b4b3a878ca4dd7e.txt").read_text(encoding="utf-8"))
    # The Markdown image line becomes its caption; headings stay sentences of their own.
    assert sentences[0] == "Украина, Иран и санкции."
    assert "https://" not in " ".join(sentences)
    first = split_sentences((ROOT / "seeds/000_6121d04cb6a2ecdd.txt").read_text(encoding="utf-8"))
    assert first[10] == "Ситуация вокруг Украины"
    assert first[-2:] == ["Лента новостей", "0"]


def test_every_seed_sentence_has_a_gold_label():
    scheme = load_scheme(ROOT / "configs/labels.yaml")
    for article, count in SEED_SENTENCE_COUNTS.items():
        lines = (ROOT / f"data/annotations/{article}.jsonl").read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines]
        assert [r["index"] for r in records] == list(range(count))
        assert all(r["speaker"] in scheme.speakers and set(r["topics"]) <= set(scheme.topics) for r in records)


def test_build_writes_splits_folds_and_skips_when_unchanged(project, capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "built" in out and "topic:nato" in out and "speaker:putin" in out
    build = project / "data/build"
    manifest = json.loads((build / "manifest.json").read_text())
    assert sum(manifest["sizes"].values()) == corpus_size(project)
    folds = json.loads((build / "folds.json").read_text())
    assert sorted(set(folds["folds"].values())) == [0, 1, 2, 3, 4]
    assert main([]) == 0
    assert "unchanged, build skipped" in capsys.readouterr().out


def test_build_is_deterministic(project, tmp_path):
    config = data_config(project)
    first = build_dataset(config, force=True)
    first_rows = {s: first.dataset[s].to_list() for s in first.dataset}
    second = build_dataset(config, force=True)
    assert first.fingerprint == second.fingerprint == fingerprint_inputs(config)
    assert {s: second.dataset[s].to_list() for s in second.dataset} == first_rows


def test_fingerprint_changes_with_an_annotation(project):
    config = data_config(project)
    before = fingerprint_inputs(config)
    rewrite_line(annotation_file(project), 3, set_field("note", "edited"))
    assert fingerprint_inputs(config) != before


def test_splits_never_share_a_sentence(project):
    dataset = build_dataset(data_config(project)).dataset
    ids = {s: set(dataset[s]["id"]) for s in dataset}
    texts = {s: set(dataset[s]["text"]) for s in dataset}
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not ids[a] & ids[b]
        assert not texts[a] & texts[b]
    assert sum(len(v) for v in ids.values()) == corpus_size(project)
    articles = {s: set(dataset[s]["article"]) for s in dataset}
    assert not articles["train"] & articles["validation"] and not articles["train"] & articles["test"]
    assert not articles["validation"] & articles["test"]


def test_context_is_the_previous_sentence_of_the_same_article(project):
    dataset = build_dataset(data_config(project)).dataset
    rows = {r["id"]: r for s in dataset for r in dataset[s]}
    assert rows["004_7b4b3a878ca4dd7e:0"]["context"] == ""
    assert rows["004_7b4b3a878ca4dd7e:6"]["context"] == rows["004_7b4b3a878ca4dd7e:5"]["text"]


BAD_INPUTS = {
    "invalid JSON": (lambda line: line[:-1], "invalid JSON"),
    "unknown topic": (set_field("topics", ["weather"]), "unknown topic 'weather'"),
    "unknown speaker": (set_field("speaker", "lavrov"), "unknown speaker 'lavrov'"),
    "missing field": (lambda line: json.dumps({k: v for k, v in json.loads(line).items() if k != "speaker"},
                                              ensure_ascii=False), "missing field(s) speaker"),
    "duplicate": (set_field("index", 1), "duplicate sentence"),
    "text mismatch": (set_field("text", "Совсем другое предложение."), "text does not match sentence 2"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_annotation_is_reported_with_path_and_line_and_nothing_is_written(project, capsys, case):
    change, message = BAD_INPUTS[case]
    path = annotation_file(project)
    rewrite_line(path, 3, change)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert f"{Path('data/annotations/004_7b4b3a878ca4dd7e.jsonl')}:3: " in err
    assert message in err
    assert not (project / "data/build").exists()


def test_unlabelled_seed_sentence_is_reported_at_its_source_line(project, capsys):
    path = annotation_file(project)
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "seeds/004_7b4b3a878ca4dd7e.txt:10: sentence 15 of article 004_7b4b3a878ca4dd7e has no label" in err


def test_failed_rebuild_keeps_the_previous_build(project):
    config = data_config(project)
    build_dataset(config)
    manifest = (project / "data/build/manifest.json").read_text()
    rewrite_line(annotation_file(project), 2, set_field("speaker", "nobody"))
    with pytest.raises(DataError):
        build_dataset(config)
    assert (project / "data/build/manifest.json").read_text() == manifest
    assert [p.name for p in (project / "data").iterdir() if p.name.startswith(".")] == []


def test_dropping_in_another_outlets_file_adds_its_sentences(project):
    extra = project / "data/annotations/other_outlet.jsonl"
    rows = [
        {"article": "tass-1", "index": 0, "text": "Песков прокомментировал итоги переговоров.", "topics": ["summit"],
         "speaker": "russia_official", "outlet": "TASS"},
        {"article": "tass-1", "index": 1, "text": "Эксперты назвали разговор полезным.", "topics": ["relations"],
         "speaker": "other", "outlet": "TASS"},
    ]
    extra.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    dataset = build_dataset(data_config(project)).dataset
    added = [r for s in dataset for r in dataset[s] if r["article"] == "tass-1"]
    assert len(added) == 2 and {r["outlet"] for r in added} == {"TASS"}
    assert sum(len(dataset[s]) for s in dataset) == corpus_size(project)
    assert {r["kind"] for r in added} == {"imported"}


def test_template_lists_a_new_articles_sentences(project, capsys):
    assert main(["--template", "004_7b4b3a878ca4dd7e"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 16 and json.loads(lines[0])["text"] == "Украина, Иран и санкции."


def test_a_bad_label_is_reported_once_not_also_as_a_missing_label(project, capsys):
    rewrite_line(annotation_file(project), 3, set_field("speaker", "lavrov"))
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "unknown speaker 'lavrov'" in err and "has no label" not in err


def test_no_article_spans_two_folds(project):
    dataset = build_dataset(data_config(project)).dataset
    fold_of: dict[str, set[int]] = {}
    for split in dataset:
        for row in dataset[split]:
            fold_of.setdefault(row["article"], set()).add(row["fold"])
    assert all(len(folds) == 1 for folds in fold_of.values())
    assert sorted({f for folds in fold_of.values() for f in folds}) == [0, 1, 2, 3, 4]


def test_the_corpus_meets_its_class_floors(tmp_path):
    project = make_project(tmp_path, n_articles=10_000)
    dataset = build_dataset(data_config(project)).dataset
    assert floor_shortfalls(dataset, load_scheme(ROOT / "configs/labels.yaml")) == []
    kinds = {row["kind"] for split in dataset for row in dataset[split]}
    assert kinds == {"seed", "authored"}


def test_an_article_without_a_source_kind_is_refused(project):
    seeds = project / "seeds/articles.yaml"
    seeds.write_text(seeds.read_text(encoding="utf-8").replace("  kind: seed\n", "", 1), encoding="utf-8")
    with pytest.raises(DataError, match="entry 1: missing kind"):
        load_articles(seeds)


def test_a_non_utf8_annotation_file_is_reported_with_path_and_line(project, capsys):
    path = annotation_file(project)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].decode("utf-8").encode("cp1251")
    path.write_bytes(b"".join(lines))
    assert main([]) == 2
    err = capsys.readouterr().err
    assert f"{Path('data/annotations/004_7b4b3a878ca4dd7e.jsonl')}:3: not UTF-8" in err and "re-save" in err
    assert "Traceback" not in err and not (project / "data/build").exists()


def _write_partial_article(project: Path, with_context: bool) -> None:
    rows = [
        {"article": "ria-7", "index": 4, "text": "Он призвал Путина к деэскалации.", "topics": ["ukraine"],
         "speaker": "biden", "context": "Байден провёл разговор с Путиным."},
        {"article": "ria-7", "index": 9, "text": "Подписаться на канал.", "topics": [], "speaker": "none",
         "context": "Кремль прокомментировал разговор."},
    ]
    if not with_context:
        rows = [{k: v for k, v in row.items() if k != "context"} for row in rows]
    (project / "data/annotations/partial.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_a_partially_labelled_article_builds_with_the_context_its_records_carry(project):
    _write_partial_article(project, with_context=True)
    dataset = build_dataset(data_config(project)).dataset
    rows = {r["id"]: r for s in dataset for r in dataset[s]}
    assert rows["ria-7:4"]["context"] == "Байден провёл разговор с Путиным."
    assert rows["ria-7:9"]["context"] == "Кремль прокомментировал разговор."


def test_a_partially_labelled_article_without_context_is_reported(project, capsys):
    _write_partial_article(project, with_context=False)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "partial.jsonl:1: article 'ria-7' has gaps in its sentence indices [0, 1, 2, 3, 5" in err
    assert "'context' field" in err


def test_grouped_assignment_keeps_groups_whole_and_near_its_fractions():
    rng = np.random.default_rng(0)
    groups = [g for g in range(40) for _ in range(rng.integers(10, 30))]
    labels = rng.random((len(groups), 4)) < [0.5, 0.2, 0.1, 0.05]
    bins = assign_groups(labels, groups, [0.7, 0.15, 0.15], seed=13)
    assert all(len({b for b, g in zip(bins, groups) if g == group}) == 1 for group in set(groups))
    shares = np.bincount(bins, minlength=3) / len(bins)
    assert np.allclose(shares, [0.7, 0.15, 0.15], atol=0.05)
    assert assign_groups(labels, groups, [0.7, 0.15, 0.15], seed=13) == bins
    assert assign_groups(labels, groups, [0.7, 0.15, 0.15], seed=7) != bins


def test_articles_sharing_a_line_form_one_group():
    groups = connected_groups(["a", "a", "b", "c", "c"], ["x", "Подписаться", "Подписаться", "y", "z"])
    assert groups[0] == groups[1] == groups[2] and groups[3] == groups[4] != groups[0]
