"""Source scores in `make evaluate`: labelled data carries its sources, the extractor is gated by the speakers."""

import json

import numpy as np

from tests.helpers import ROOT
from train.data.scheme import load_scheme
from train.evaluation.scoring import Predictions, jsonl_data, score_sources
from train.modeling.outputs import HeadProbabilities

SCHEME = load_scheme(ROOT / "configs/labels.yaml")


def test_jsonl_data_carries_sources_only_when_every_line_has_them(tmp_path):
    lines = (ROOT / "data/annotations/004_7b4b3a878ca4dd7e.jsonl").read_text(encoding="utf-8").splitlines()
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = jsonl_data(labelled, SCHEME, "model")
    assert len(data.source_gold) == len(data) and data.quote_gold[3] == json.loads(lines[3])["quote"]
    partial = tmp_path / "partial.jsonl"
    first = {k: v for k, v in json.loads(lines[0]).items() if k not in ("sources", "quote")}
    partial.write_text("\n".join([json.dumps(first, ensure_ascii=False), *lines[1:]]) + "\n", encoding="utf-8")
    assert jsonl_data(partial, SCHEME, "model").source_gold is None


def test_gold_speakers_as_predictions_score_the_seed_page_by_its_own_labels(tmp_path):
    path = tmp_path / "seed.jsonl"
    path.write_text((ROOT / "data/annotations/004_7b4b3a878ca4dd7e.jsonl").read_text(encoding="utf-8"),
                    encoding="utf-8")
    data = jsonl_data(path, SCHEME, "model")
    certain_and_right = HeadProbabilities(np.zeros((len(data), len(SCHEME.topics))),
                                          np.eye(len(SCHEME.speakers))[data.gold.speaker])
    evaluation, found = score_sources(data, Predictions(certain_and_right, [0.5] * len(SCHEME.topics), 1.0))
    assert len(found) == len(data) and evaluation.roles_version.startswith("2021-2022")
    overall = evaluation.overall
    assert overall.none_without_source == 1.0 and overall.unattributed == int((data.gold.speaker ==
                                                                                SCHEME.speakers.index("none")).sum())
    assert overall.first_source_accuracy > 0.5 and 0 < overall.name_f1 <= 1


def test_make_sources_measures_every_gate_and_writes_its_report(built_project, untrained_checkpoint, tmp_path,
                                                                 capsys):
    from tests.helpers import data_overrides
    from train.cli.sources import main

    out = tmp_path / "reports" / "measure.json"
    argv = ["--config", str(built_project / "configs/cpu.yaml"), "--out", str(out), *data_overrides(built_project)]
    assert main([*argv, "--model", str(untrained_checkpoint)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    gates = {r["gate"] for r in report["results"]}
    assert gates == {"gold speakers", f"predicted by {untrained_checkpoint.name}", "no gate"}
    assert report["roles_version"].startswith("2021-2022") and f"wrote {out}" in capsys.readouterr().out
    # gold speakers as the gate: a `none` sentence never gets a source
    assert all(r["scores"]["none_without_source"] == 1.0 for r in report["results"] if r["gate"] == "gold speakers")
    assert main(argv) == 0  # without a checkpoint: the TF-IDF speakers trained without each event family
    assert "predicted (TF-IDF, leave-event-out)" in {r["gate"] for r in json.loads(out.read_text())["results"]}


def test_several_checkpoints_gate_each_sentence_by_one_whose_data_lacks_its_article(built_project, tmp_path,
                                                                                      tiny_encoder):
    import yaml

    from tests.helpers import data_overrides, make_project, make_untrained_checkpoint
    from train.cli.sources import main
    from train.config import DEFAULT_CONFIG, load_config
    from train.data.build import build_dataset

    def checkpoint_without(kept: int, name: str):
        """A run whose data holds only the first `kept` articles of the test project."""
        project = make_project(tmp_path / name, n_articles=kept)
        build_dataset(load_config(project / DEFAULT_CONFIG, data_overrides(project)).data)
        return make_untrained_checkpoint(tmp_path / name / "run", tiny_encoder, project=project)

    entries = yaml.safe_load((built_project / "seeds/articles.yaml").read_text(encoding="utf-8"))
    early, late = checkpoint_without(len(entries) - 3, "early"), checkpoint_without(len(entries), "all")
    out = tmp_path / "measure.json"
    argv = ["--config", str(built_project / "configs/cpu.yaml"), "--out", str(out), *data_overrides(built_project)]
    assert main([*argv, "--model", str(early), "--model", str(late)]) == 0
    gated = [r for r in json.loads(out.read_text())["results"] if r["gate"] == "predicted, leave-out (2 checkpoints)"]
    # only the three articles outside the first run's data are gated; the second run's data holds every article
    labelled_last = sum(1 for e in entries[-3:] for line in
                        (built_project / "data/annotations" / f"{e['id']}.jsonl").read_text().splitlines() if line)
    assert gated and sum(r["scores"]["sentences"] for r in gated) == labelled_last
