"""`train.evaluation.report`: a report over two tiny checkpoints and the baseline, checked in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.browser import render_in_chromium
from tests.helpers import make_untrained_checkpoint
from train.cli.report import main
from train.evaluation.report import BASELINE_NAME, build_report, discover_checkpoints
from train.evaluation.sections import cv_rows, format_p
from train.modeling.checkpoint import write_json

SECTIONS = ["runs", "headline", "paired", "cv", "per-label", "confusion", "reliability", "breakdown", "sentences"]
# The layout `make cv` writes: a summary per setting and the paired context effect.
CROSS_VALIDATION = {"n_folds": 5, "seeds": [42], "summary": {
    "context": {"combined": {"mean": 0.4321, "sd": 0.0123}, "topic_macro_f1": {"mean": 0.5, "sd": 0.1}},
    "no_context": {"combined": {"mean": 0.4011, "sd": 0.02}, "topic_macro_f1": {"mean": 0.45, "sd": 0.1}}},
    "context_effect": {"n_pairs": 5, "combined": {"mean": 0.031, "sd": 0.01}}}


@pytest.fixture(scope="module")
def models(tiny_encoder, built_project, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("models")
    make_untrained_checkpoint(directory / "tiny-context", tiny_encoder, use_context=True, seed=1, project=built_project)
    make_untrained_checkpoint(directory / "tiny-no-context", tiny_encoder, use_context=False, seed=2,
                              project=built_project)
    write_json(directory / "tiny-context" / "metrics.json", {"cv": CROSS_VALIDATION})
    return directory


@pytest.fixture(scope="module")
def report(models, data_config, tmp_path_factory) -> Path:
    return build_report([models / "tiny-context", models / "tiny-no-context"], name="two-tiny",
                        out_dir=tmp_path_factory.mktemp("reports"))


def test_report_has_every_section_and_row(report):
    page = (report / "index.html").read_text(encoding="utf-8")
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in page
    headline = page.split('<section id="headline">')[1].split("</section>")[0]
    assert headline.count("<tr>") == 1 + 3  # header, two checkpoints, the baseline
    for name in ("tiny-context", "tiny-no-context", BASELINE_NAME):
        assert f"<td>{name}" in headline
    assert re.search(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", headline)
    paired = page.split('<section id="paired">')[1].split("</section>")[0]
    assert paired.count("<tr>") == 1 + 2 and re.search(r"p(=\d\.\d{3}|<0\.001)", paired)
    cv = page.split('<section id="cv">')[1].split("</section>")[0]
    for row in ("tiny-context (with context)", "tiny-context (without context)",
                "tiny-context: with minus without context"):
        assert f"<td>{row}" in cv
    assert "<th>Combined</th>" in cv and "<th>Topic macro-F1</th>" in cv
    assert "0.432 ± 0.012" in cv and "0.401 ± 0.020" in cv and "0.031 ± 0.010" in cv
    assert page.count('src="data:image/png;base64,') == 5
    assert "http://" not in page and "https://" not in page


def test_markdown_has_the_tables_and_links_existing_figures(report):
    markdown = (report / "report.md").read_text(encoding="utf-8")
    for heading in ("Headline metrics", "Paired bootstrap", "Cross-validation", "Per-label F1",
                    "Speaker confusion", "Reliability", "Per-article", "Errors and disagreements"):
        assert f"## {heading}" in markdown
    assert BASELINE_NAME in markdown
    figures = re.findall(r"\]\((figures/[^)]+\.png)\)", markdown)
    assert len(figures) == 5 and all((report / f).stat().st_size > 1000 for f in figures)


def test_disagreements_list_gold_labels(report, data_config):
    from datasets import load_from_disk
    test = load_from_disk(str(Path(data_config.build_dir) / "dataset"))["test"]
    sentences = (report / "index.html").read_text(encoding="utf-8").split('<section id="sentences">')[1]
    first = test[0]
    # Untrained heads get (almost) everything wrong, so every test sentence is listed with its gold labels.
    assert first["id"] in sentences
    assert f"{', '.join(first['topics']) or '(no topic)'}; {first['speaker']}" in sentences
    assert 'class="wrong"' in sentences


def test_a_flat_cross_validation_summary_is_one_row():
    flat = {"summary": {"combined": {"mean": 0.5, "sd": 0.1}}}
    assert cv_rows("run", flat) == [("run", {"combined": {"mean": 0.5, "sd": 0.1}})]


def test_report_renders_in_chromium_without_broken_images_or_script_errors(report, tmp_path):
    state, _ = render_in_chromium(report / "index.html", tmp_path)
    assert state == {"images": "5", "broken-images": "0", "script-errors": "0", "external-requests": "0"}


def test_chromium_check_catches_a_broken_image_and_a_script_error(report, tmp_path):
    page = (report / "index.html").read_text(encoding="utf-8")
    broken = page.replace('src="data:image/png;base64,', 'src="data:image/png;base64,AAAA', 1)
    broken = broken.replace("</body>", "<script>undefinedFunction();</script>"
                            '<img alt="" src="https://example.org/tracker.png"></body>')
    copy = tmp_path / "broken.html"
    copy.write_text(broken, encoding="utf-8")
    state, _ = render_in_chromium(copy, tmp_path)
    assert state["script-errors"] == "1" and state["external-requests"] == "1"
    assert state["broken-images"] == "2"  # the damaged PNG and the blocked external one


def test_default_models_are_every_complete_checkpoint(models, tmp_path):
    directory = Path(shutil.copytree(models, tmp_path / "models", symlinks=True))
    (directory / "latest").symlink_to("tiny-context")
    shutil.copytree(directory / "tiny-context", directory / ".staging")
    (directory / "half-written").mkdir()
    (directory / "half-written" / "config.json").write_text("{}", encoding="utf-8")
    assert [c.path for c in discover_checkpoints(directory)] == [directory / "tiny-context", directory / "tiny-no-context"]


def assert_no_report(reports: Path) -> None:
    assert not reports.exists() or list(reports.iterdir()) == []


def test_bad_inputs_give_one_clear_line_and_no_report(models, built_project, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(built_project)
    reports = tmp_path / "reports"
    incomplete = Path(shutil.copytree(models / "tiny-no-context", tmp_path / "incomplete"))
    (incomplete / "train_config.yaml").unlink()
    other_scheme = Path(shutil.copytree(models / "tiny-no-context", tmp_path / "other-scheme"))
    config = json.loads((other_scheme / "config.json").read_text(encoding="utf-8"))
    config["speakers"] = config["speakers"][:-1]
    (other_scheme / "config.json").write_text(json.dumps(config), encoding="utf-8")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")

    cases = [([str(models / "tiny-context"), str(incomplete)], str(incomplete)),
             ([str(models / "tiny-context"), str(other_scheme)], str(other_scheme)),
             ([str(models / "tiny-context"), "--data", str(empty)], str(empty)),
             (["--resamples", "10"], "models")]  # built_project has no models/ directory
    for argv, named in cases:
        assert main([*argv, "--out-dir", str(reports), "--name", "bad"]) == 2
        err = capsys.readouterr().err
        assert named in err and "Traceback" not in err and err.count("\n") == 1, err
        assert_no_report(reports)


def test_p_values_below_the_resolution_read_as_an_upper_bound():
    assert [format_p(p) for p in (0.0, 0.0004, 0.001, 0.0123)] == ["p<0.001", "p<0.001", "p=0.001", "p=0.012"]


def _png_size(png: Path) -> tuple[int, int]:
    header = png.read_bytes()[16:24]
    return int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")


def test_a_report_of_eight_checkpoints_stays_readable(tiny_encoder, built_project, tmp_path):
    """Eight runs differing in epochs, learning rate and context, one with random weights."""
    from train.config import load_config, save_config

    paths = []
    for i in range(8):
        path = make_untrained_checkpoint(tmp_path / f"run-{i}", tiny_encoder, use_context=i % 2 == 0, seed=i,
                                         project=built_project)
        overrides = [f"train.epochs={3 + i // 2}", f"train.learning_rate={5e-5 if i < 4 else 3e-5}"]
        config = load_config(path / "train_config.yaml", overrides + (["model.random_init=true"] if i == 7 else []))
        save_config(config, path / "train_config.yaml")
        paths.append(path)
    report = build_report(paths, name="eight", out_dir=tmp_path / "reports", n_resamples=50)
    page = (report / "index.html").read_text(encoding="utf-8")
    runs = page.split('<section id="runs">')[1].split("</section>")[0]
    for column in ("epochs", "learning rate", "context"):
        assert f"<th>{column}</th>" in runs
    assert "<th>layers</th>" not in runs  # the same for all eight: not a difference
    assert "<th>encoder</th>" in runs and "<th>encoder choice</th>" in runs  # shown always: what each run used
    assert "<td>run-7 (RANDOM WEIGHTS)</td>" in runs and "run-7 ran with random encoder weights" in runs
    headline = page.split('<section id="headline">')[1].split("</section>")[0]
    assert "epochs 4, learning rate 5e-05, context no" in headline  # run-3
    assert headline.count("RANDOM WEIGHTS") == 2  # run-7's name and its settings
    # A grid of at most four panels a row: the page shows it at its own width instead of squeezing one long strip.
    for figure in ("speaker_confusion.png", "reliability.png"):
        width, height = _png_size(report / "figures" / figure)
        assert width <= 1350 and height > 2 * 250, (figure, width, height)
    state, _ = render_in_chromium(report / "index.html", tmp_path)
    assert state == {"images": "5", "broken-images": "0", "script-errors": "0", "external-requests": "0"}
