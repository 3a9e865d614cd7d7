"""The coverage report: estimators recover a known truth, the file is streamed in any format, the page renders."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.browser import render_in_chromium
from train.bench.coverage import known_errors, write_synthetic_predictions
from train.cli.coverage import main
from train.coverage.estimates import (
    ADJUSTED,
    PROBABILITY_MEAN,
    adjusted_binary_shares,
    adjusted_class_shares,
    confusion_rates,
    held_out_errors,
    resampled_sums,
)
from train.coverage.heldout import checkpoint_errors
from train.coverage.page import build_coverage
from train.coverage.tables import Layout, PredictionsError, group_shares, read_corpus
from train.data.scheme import load_scheme
from train.modeling.checkpoint import Checkpoint
from train.modeling.tagger import Tagger
from train.prediction.run import predict_files
from train.prediction.writers import CsvWriter, ParquetWriter, read_rows

ROOT = Path(__file__).resolve().parents[1]
SCHEME = load_scheme(ROOT / "configs/labels.yaml")


def test_adjusted_classify_and_count_recovers_the_true_distribution():
    rng = np.random.default_rng(0)
    true = rng.dirichlet(np.ones(7), size=(3, 5))  # leading dimensions: resamples x groups
    rates = 0.7 * np.eye(7) + 0.3 * rng.dirichlet(np.ones(7), size=7)
    observed = true @ rates
    assert np.abs(observed - true).max() > 0.02  # the raw shares are biased
    np.testing.assert_allclose(adjusted_class_shares(observed, rates), true, atol=1e-9)


def test_adjusted_shares_stay_a_distribution_when_noise_pushes_them_out():
    rates = np.array([[0.9, 0.1], [0.3, 0.7]])
    shares = adjusted_class_shares(np.array([0.95, 0.05]), rates)  # below what any true mix can produce
    np.testing.assert_allclose(shares, [1.0, 0.0])


def test_a_class_missing_from_the_held_out_data_is_assumed_right():
    np.testing.assert_allclose(confusion_rates(np.array([[3, 1], [0, 0]])), [[0.75, 0.25], [0, 1]])


def test_adjusted_topic_shares_invert_the_true_and_false_positive_rates():
    true = np.array([0.1, 0.5, 0.3])
    tpr, fpr = np.array([0.8, 0.6, 0.35]), np.array([0.05, 0.1, 0.3])
    observed = true * tpr + (1 - true) * fpr
    adjusted = adjusted_binary_shares(observed, tpr, fpr)
    np.testing.assert_allclose(adjusted[:2], true[:2])
    assert adjusted[2] == observed[2]  # tpr - fpr = 0.05: too close to correct, the raw share stands


def test_held_out_errors_and_the_choice_of_estimator():
    speaker_probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    errors = held_out_errors("test", np.array([[0.9], [0.1], [0.8], [0.2]]), np.array([[1], [0], [1], [0]]),
                             np.array([[1], [0], [0], [0]]), speaker_probs, np.array([0, 0, 1, 1]))
    np.testing.assert_array_equal(errors.speaker_confusion, [[2, 0], [1, 1]])
    assert errors.topic_true_positive_rate[0] == 1.0 and errors.topic_false_positive_rate[0] == pytest.approx(1 / 3)
    assert errors.speaker_method == ADJUSTED  # said 0.6 for a sentence it got wrong: not calibrated
    calibrated = held_out_errors("test", np.full((4, 1), 0.5), np.ones((4, 1)), np.array([[1], [0], [1], [0]]),
                                 np.full((4, 2), 0.5), np.array([0, 1, 0, 1]))
    assert calibrated.topic_method == PROBABILITY_MEAN and calibrated.speaker_method == PROBABILITY_MEAN


def test_resampled_sums_keep_the_number_of_articles():
    features = np.ones((50, 3))
    sums = resampled_sums(features, 250, seed=1)
    assert sums.shape == (250, 3) and (sums == 50).all()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("predictions") / "predictions.jsonl"
    truth = write_synthetic_predictions(path, SCHEME, known_errors(SCHEME), articles=400, outlets=4, days=20)
    return path, truth


def test_corrected_shares_cover_the_known_truth_and_beat_raw_counts(synthetic):
    path, truth = synthetic
    errors = known_errors(SCHEME)
    corpus = read_corpus(path, SCHEME)
    overall = group_shares("all", corpus.features, Layout(len(SCHEME.topics), len(SCHEME.speakers)), errors, 300)
    assert corpus.sentences == truth["sentences"]
    for key in ("speaker", "topic"):
        corrected = np.abs(overall.estimate[key] - truth[key]).max()
        raw = np.abs(overall.estimate[f"raw_{key}"] - truth[key]).max()
        assert corrected < raw / 2, (key, corrected, raw)
        covered = (overall.low[key] <= truth[key]) & (truth[key] <= overall.high[key])
        assert covered.mean() >= 0.8, (key, covered)


def test_csv_and_parquet_predictions_read_the_same_as_jsonl(synthetic, tmp_path):
    path, _ = synthetic
    rows = list(read_rows(path, "jsonl"))[:300]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    expected = read_corpus(jsonl, SCHEME)
    for name, writer_class in (("p.csv", CsvWriter), ("p.parquet", ParquetWriter)):
        writer = writer_class(tmp_path / name, list(SCHEME.topics), list(SCHEME.speakers))
        writer.write(rows)
        writer.close()
        corpus = read_corpus(tmp_path / name, SCHEME)
        np.testing.assert_allclose(corpus.features, expected.features, rtol=1e-6)
        assert [a.id for a in corpus.articles] == [a.id for a in expected.articles]


@pytest.mark.parametrize("line, message", [
    ('{"article": "a", "speaker": "trump", "topics": []}', "speaker 'trump' is not one of the checkpoint's"),
    ('{"article": "a", "speaker": "putin", "topics": ["sport"]}', "topic 'sport' is not one of"),
    ('{"article": "a", "speaker": "putin", "topics": []}', "no topic_scores for every label"),
    ("not json", "invalid JSON"),
])
def test_a_bad_row_names_file_and_line(synthetic, tmp_path, line, message):
    path, _ = synthetic
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:5]) + line + "\n",
                   encoding="utf-8")
    with pytest.raises(PredictionsError, match=re.escape(f"{bad}:6: ") + ".*" + re.escape(message)):
        read_corpus(bad, SCHEME)


def test_an_article_split_apart_is_refused(synthetic, tmp_path):
    path, _ = synthetic
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    first = json.loads(lines[0])["article"]
    rest = [line for line in lines if json.loads(line)["article"] != first][:40]
    bad = tmp_path / "split.jsonl"
    bad.write_text(lines[0] + "".join(rest) + lines[0], encoding="utf-8")
    with pytest.raises(PredictionsError, match="appears twice"):
        read_corpus(bad, SCHEME)


@pytest.fixture(scope="module")
def coverage_report(synthetic, untrained_checkpoint, tmp_path_factory) -> Path:
    """The untrained checkpoint's real held-out errors applied to the synthetic file; a sampled browser."""
    path, _ = synthetic
    return build_coverage(path, SCHEME, checkpoint_errors(Checkpoint.open(untrained_checkpoint)),
                          str(untrained_checkpoint), tmp_path_factory.mktemp("coverage") / "out", n_resamples=200,
                          sample_size=300)


def test_the_page_shows_every_outlet_with_intervals_and_writes_the_tables(coverage_report, synthetic):
    page = (coverage_report / "index.html").read_text(encoding="utf-8")
    with (coverage_report / "shares.csv").open(encoding="utf-8") as file:
        shares = list(csv.DictReader(file))
    outlets = sorted({r["group"] for r in shares if r["scope"] == "outlet"})
    assert outlets == [f"outlet-{i:02d}" for i in range(4)]
    speakers = page.split('<section id="speakers">')[1].split("</section>")[0]
    for outlet in outlets:
        assert f"<td>{outlet}</td>" in speakers
    # estimate, 95% interval, and the raw share with its count, in every cell
    assert len(re.findall(r"<b>\d+\.\d%</b> <span class=\"ci\">\[\d+\.\d–\d+\.\d\]</span>"
                          r"<span class=\"raw\">raw \d+\.\d% \([\d,]+\)</span>", speakers)) == 5 * len(SCHEME.speakers)
    assert {r["scope"] for r in shares} == {"overall", "outlet", "day"}
    assert all(float(r["low"]) <= float(r["estimate"]) <= float(r["high"]) for r in shares if r["estimate"])
    assert "A random sample of <b>300</b>" in page
    assert page.count('src="data:image/png;base64,') == 6
    with (coverage_report / "articles.csv").open(encoding="utf-8") as file:
        assert sum(1 for _ in csv.DictReader(file)) == 400


def test_the_page_renders_in_chromium_and_the_browser_filters(coverage_report, tmp_path):
    state, dom = render_in_chromium(coverage_report / "index.html", tmp_path)
    assert state == {"images": "6", "broken-images": "0", "script-errors": "0", "external-requests": "0"}
    count = re.search(r'<p id="browser-count" class="note">(\d+) matching sentence\(s\), the first 200 shown</p>', dom)
    assert count and count.group(1) == "300"
    assert dom.split('id="browser-rows">')[1].split("</tbody>")[0].count("<tr>") == 200


def test_an_existing_directory_that_is_not_a_report_is_left_alone(synthetic, coverage_report, tmp_path):
    path, _ = synthetic
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep", encoding="utf-8")
    assert main([str(path), "--out", str(mine)]) == 2
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "keep"


def test_make_coverage_end_to_end_on_real_predictions(untrained_checkpoint, built_project, tmp_path, capsys,
                                                      monkeypatch):
    monkeypatch.chdir(built_project)
    predictions = tmp_path / "predictions.jsonl"
    predict_files(Tagger.from_pretrained(untrained_checkpoint), [str(ROOT / "seeds")], predictions)
    out = tmp_path / "report"
    argv = [str(predictions), "--out", str(out), "--model", str(untrained_checkpoint), "--resamples", "50"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    first = (out / "index.html").stat().st_mtime_ns
    assert main(argv) == 0  # an earlier coverage report is replaced
    assert (out / "index.html").stat().st_mtime_ns >= first
    assert main([str(tmp_path / "missing.jsonl"), "--model", str(untrained_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "missing.jsonl: predictions file not found" in err and "Traceback" not in err
