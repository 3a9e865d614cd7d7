"""The annotation loop without a server: ranking, Label Studio config and tasks, import, audit, simulation."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers import ROOT
from train.annotation.audit import run_audit
from train.annotation.importer import import_export
from train.annotation.label_studio import labeling_config, labels_from_result
from train.annotation.sampling import (
    Candidate,
    DiversityRules,
    normalized_text,
    select,
    speaker_uncertainty,
    topic_uncertainty,
)
from train.annotation.simulate import SimulationSettings, format_curves, learning_curves
from train.annotation.suggest import suggest
from train.cli.import_labels import main as import_labels_main
from train.config import load_config
from train.data.annotations import validate_record
from train.data.build import build_dataset, labelled_examples
from train.data.scheme import load_scheme
from train.errors import UserError
from train.modeling.tagger import Tagger

EXPORT = ROOT / "tests/fixtures/label_studio_export.json"
SCHEME = load_scheme(ROOT / "configs/labels.yaml")


def test_speaker_margin_is_one_on_a_tie_and_zero_when_certain():
    probs = np.array([[0.5, 0.5, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0], [0.6, 0.3, 0.1, 0, 0, 0, 0]])
    assert speaker_uncertainty(probs) == pytest.approx([1.0, 0.0, 0.7])


def test_topic_uncertainty_measures_the_closest_topic_to_its_own_threshold():
    thresholds = np.array([0.3, 0.5])
    assert topic_uncertainty(np.array([[0.3, 0.0]]), thresholds) == pytest.approx([1.0])
    assert topic_uncertainty(np.array([[0.0, 1.0]]), thresholds) == pytest.approx([0.0])
    # 0.65 is halfway from the 0.3 threshold to 1.0; 0.9 is 80% of the way from 0.5 to 1.0.
    assert topic_uncertainty(np.array([[0.65, 0.9]]), thresholds) == pytest.approx([0.5])


def test_selection_caps_articles_skips_labelled_text_and_keeps_boilerplate_once():
    candidates = [Candidate("a", 0, "Подписаться на канал 12.01", 0.99),
                  Candidate("b", 1, "подписаться на канал, 13.01!", 0.98),
                  Candidate("a", 2, "Путин заявил о гарантиях.", 0.97),
                  Candidate("a", 3, "Байден ответил.", 0.96),
                  Candidate("c", 4, "Песков прокомментировал разговор.", 0.95),
                  Candidate("c", 5, "Лавров встретился с Блинкеном.", 0.10)]
    rules = DiversityRules(per_article=2, labelled={normalized_text("Песков прокомментировал разговор")})
    assert [c.index for c in select(candidates, 4, rules)] == [0, 2, 5]


def test_labeling_config_shows_context_then_sentence_and_every_label_with_its_description():
    root = ET.fromstring(labeling_config(ROOT / "configs/labels.yaml"))
    texts = [e.get("name") for e in root.iter("Text")]
    assert texts == ["context", "text"]
    choices = {e.get("name"): e for e in root.iter("Choices")}
    raw = yaml.safe_load((ROOT / "configs/labels.yaml").read_text(encoding="utf-8"))
    topics, speaker = choices["topics"], choices["speaker"]
    assert topics.get("choice") == "multiple" and topics.get("toName") == "text"
    assert {c.get("value"): c.get("hint") for c in topics} == raw["topics"]
    assert speaker.get("choice") == "single-radio" and speaker.get("required") == "true"
    assert [c.get("value") for c in speaker] == list(raw["speakers"])


@pytest.fixture
def articles(tmp_path) -> Path:
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "feed.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [
        {"id": "ria-1", "outlet": "РИА", "text": "Путин провёл разговор с Байденом. Он призвал США дать гарантии. "
                                                   "Стороны обсудили Украину. Песков назвал беседу откровенной."},
        {"id": "tass-2", "outlet": "ТАСС", "text": "Байден пригрозил санкциями. Подписаться на канал."},
    ]), encoding="utf-8")
    # A labelled seed article: none of its sentences may be suggested again.
    (folder / "seed.txt").write_text((ROOT / "seeds/004_7b4b3a878ca4dd7e.txt").read_text(encoding="utf-8"),
                                     encoding="utf-8")
    return folder


def test_suggest_writes_tasks_config_and_prefilled_annotations(articles, untrained_checkpoint, tmp_path):
    tagger = Tagger.from_pretrained(untrained_checkpoint)
    out = tmp_path / "suggestions"
    result = suggest(tagger, [str(articles)], 4, out, ROOT / "configs/labels.yaml", ROOT / "data/annotations",
                     model_version="untrained", per_article=3)
    tasks = json.loads((out / "tasks.json").read_text(encoding="utf-8"))
    assert len(tasks) == 4 and result.articles == 3
    assert all(t["data"]["article"] in ("ria-1", "tass-2") for t in tasks)
    assert sum(t["data"]["article"] == "ria-1" for t in tasks) <= 3
    scores = [t["predictions"][0]["score"] for t in tasks]
    assert scores == sorted(scores)  # most uncertain (lowest model certainty) first
    for task in tasks:
        data, prediction = task["data"], task["predictions"][0]
        assert set(data) >= {"text", "context", "article", "index", "outlet"}
        assert prediction["model_version"] == "untrained"
        assert all(0 <= r["score"] <= 1 for r in prediction["result"] if r["from_name"] in ("topics", "speaker"))
        topics, speakers = labels_from_result(prediction["result"])
        assert len(speakers) == 1 and set(topics) <= set(SCHEME.topics)
    ria = {t["data"]["index"]: t["data"] for t in tasks if t["data"]["article"] == "ria-1"}
    for index, data in ria.items():
        assert data["context"] == ("" if index == 0 else ["Путин провёл разговор с Байденом.",
                                                          "Он призвал США дать гарантии.",
                                                          "Стороны обсудили Украину."][index - 1])
    lines = [json.loads(line) for line in (out / "suggestions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["article"], r["index"]) for r in lines] == [(t["data"]["article"], t["data"]["index"]) for t in tasks]
    assert all(validate_record(r, "x", SCHEME) == [] for r in lines)
    assert ET.fromstring((out / "labeling_config.xml").read_text(encoding="utf-8")).tag == "View"
    with pytest.raises(UserError, match="already exists"):
        suggest(tagger, [str(articles)], 4, out, ROOT / "configs/labels.yaml", ROOT / "data/annotations",
                model_version="untrained")


def test_the_random_strategy_samples_every_sentence_alike_including_labelled_ones(articles, untrained_checkpoint,
                                                                                  tmp_path):
    tagger = Tagger.from_pretrained(untrained_checkpoint)
    picked = []
    for seed in range(2):
        out = tmp_path / f"random-{seed}"
        suggest(tagger, [str(articles)], 10, out, ROOT / "configs/labels.yaml", ROOT / "data/annotations",
                model_version="untrained", strategy="random", seed=seed)
        lines = [json.loads(line) for line in (out / "suggestions.jsonl").read_text(encoding="utf-8").splitlines()]
        assert len(lines) == 10 and all(validate_record(r, "x", SCHEME) == [] for r in lines)
        picked.append([(r["article"], r["index"]) for r in lines])
    assert picked[0] != picked[1]
    # no diversity rules: the already-labelled seed page and more than 3 sentences of one article can be drawn
    assert any(Path(a).stem == "seed" or a == "seed" for a, _ in picked[0] + picked[1])
    with pytest.raises(UserError, match="choose one of uncertainty, random"):
        suggest(tagger, [str(articles)], 4, tmp_path / "x", ROOT / "configs/labels.yaml", ROOT / "data/annotations",
                model_version="untrained", strategy="margin")


def test_import_of_a_real_export_keeps_submitted_labels_and_reports_disagreement(project, capsys):
    assert import_labels_main([str(EXPORT), "--name", "ria_test"]) == 1
    captured = capsys.readouterr()
    task_ids = [t["id"] for t in json.loads(EXPORT.read_text(encoding="utf-8"))]
    assert f"task {task_ids[3]}: annotations disagree" in captured.err
    assert "'us_official'" in captured.err and "'biden'" in captured.err
    assert "3 sentences imported" in captured.out and "1 skipped or cancelled, 1 not labelled yet" in captured.out
    out = project / "data/annotations/ria_test.jsonl"
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    # Two agreeing annotators count once; the skipped, the unlabelled and the disputed task are left out.
    assert [(r["index"], r["topics"], r["speaker"]) for r in records] == [
        (0, ["summit"], "none"), (1, ["nato"], "putin"), (5, [], "both")]
    assert records[1]["context"] == records[0]["text"] and records[0]["outlet"] == "РИА Тест"
    # The article is labelled only in part; the build accepts it and keeps each record's context.
    dataset = build_dataset(load_config(project / "configs/cpu.yaml").data).dataset
    rows = {r["id"]: r for split in dataset for r in dataset[split]}
    assert rows["ria-test:1"]["context"] == records[0]["text"]
    assert import_labels_main([str(EXPORT), "--name", "ria_test"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_import_into_another_folder_leaves_the_training_annotations_alone(project, tmp_path):
    before = sorted(p.name for p in (project / "data/annotations").iterdir())
    assert import_labels_main([str(EXPORT), "--name", "sample", "--dir", str(tmp_path / "sample")]) == 1
    assert len((tmp_path / "sample/sample.jsonl").read_text(encoding="utf-8").splitlines()) == 3
    assert sorted(p.name for p in (project / "data/annotations").iterdir()) == before


def test_import_refuses_a_file_that_is_not_a_json_export(tmp_path):
    bad = tmp_path / "export.csv"
    bad.write_text("id,text\n1,a\n", encoding="utf-8")
    with pytest.raises(UserError, match="export.csv:1: not a JSON file"):
        import_export(bad, tmp_path / "annotations", None, SCHEME)


def _synthetic_examples(mislabel: int | None = None) -> list[dict]:
    """Four articles of near-identical statements whose speaker the wording gives away."""
    phrases = {"putin": "Путин заявил журналистам о гарантиях безопасности",
               "biden": "Байден сказал репортёрам о санкциях против России",
               "none": "Подписаться на наш канал в мессенджере и читать новости"}
    places = ["в Москве", "в Женеве", "в Вашингтоне", "в Брюсселе", "в Киеве"]
    times = ["утром", "днём", "вечером", "ночью"]
    examples = []
    for article in range(4):
        for n, (speaker, phrase) in enumerate(phrases.items()):
            for k in range(5):
                index = n * 5 + k
                examples.append({"where": f"a{article}.jsonl:{index + 1}", "article": f"a{article}", "index": index,
                                 "text": f"{phrase} {places[k]} {times[article]}", "context": "", "outlet": "x",
                                 "topics": ["sanctions"] if speaker == "biden" else [], "speaker": speaker})
    if mislabel is not None:
        examples[mislabel]["speaker"] = "biden"
    return examples


def test_audit_flags_a_planted_speaker_error_first(tmp_path):
    examples = _synthetic_examples(mislabel=2)  # a Putin statement labelled Biden
    suspects = run_audit(examples, SCHEME, tmp_path)
    speaker_suspects = [s for s in suspects if s.field == "speaker"]
    assert speaker_suspects[0].where == "a0.jsonl:3"
    assert speaker_suspects[0].label == "biden" and speaker_suspects[0].suggested == "putin"
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert lines[0]["where"] == suspects[0].where
    assert "a0.jsonl:3" in (tmp_path / "audit.md").read_text(encoding="utf-8")
    tasks = json.loads((tmp_path / "tasks.json").read_text(encoding="utf-8"))
    review = next(t for t in tasks if t["data"]["where"] == "a0.jsonl:3")
    assert labels_from_result(review["predictions"][0]["result"])[1] == ["biden"]
    assert "speaker: biden -> putin?" in review["data"]["audit"]


def test_audit_of_the_project_data_points_at_real_lines(data_config, tmp_path):
    examples = labelled_examples(data_config)
    suspects = run_audit(examples, SCHEME, tmp_path)
    assert [s.quality for s in suspects] == sorted(s.quality for s in suspects)
    for s in suspects:
        path, line = s.where.rsplit(":", 1)
        record = json.loads(Path(path).read_text(encoding="utf-8").splitlines()[int(line) - 1])
        label = sorted(record[s.field]) if s.field == "topics" else record[s.field]
        assert record["text"] == s.text and label == (sorted(s.label) if s.field == "topics" else s.label)


def test_simulation_gives_curves_for_both_strategies_and_is_reproducible():
    examples = _synthetic_examples()
    settings = SimulationSettings(budgets=(10, 20, 30), seed_size=10, batch_size=5, seeds=(0, 1))
    first, second = learning_curves(examples, SCHEME, settings), learning_curves(examples, SCHEME, settings)
    assert first["curves"] == second["curves"]
    for strategy in ("random", "margin"):
        assert set(first["curves"][strategy]) == {10, 20, 30}
        assert first["curves"][strategy][30]["combined"]["n"] == 2
    table = format_curves(first)
    assert "| 30 |" in table and "margin − random" in table
    with pytest.raises(UserError, match="cannot be reached"):
        learning_curves(examples, SCHEME, SimulationSettings(budgets=(12,), seed_size=10, batch_size=5))
