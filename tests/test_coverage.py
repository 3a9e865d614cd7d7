"""The coverage report: estimators recover a known truth, the file is streamed in any format, the page renders."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.browser import render_in_chromium
from train.bench.coverage import SyntheticTagger, synthetic_calibration, write_synthetic_predictions
from train.cli.coverage import main
from train.coverage.estimates import fit_corrections, resampled_sums
from train.coverage.labelled import checkpoint_corrections
from train.coverage.page import build_coverage
from train.coverage.sources import source_check
from train.coverage.tables import Layout, PredictionsError, group_shares, read_corpus
from train.data.scheme import load_scheme
from train.modeling.checkpoint import Checkpoint
from train.modeling.tagger import Tagger
from train.prediction.run import predict_files
from train.prediction.writers import CsvWriter, ParquetWriter, read_rows
from train.sources.schema import Source

ROOT = Path(__file__).resolve().parents[1]
SCHEME = load_scheme(ROOT / "configs/labels.yaml")


def test_resampled_sums_keep_the_number_of_articles():
    features = np.ones((50, 3))
    sums = resampled_sums(features, 250, seed=1)
    assert sums.shape == (250, 3) and (sums == 50).all()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("predictions") / "predictions.jsonl"
    truth = write_synthetic_predictions(path, SCHEME, TAGGER, articles=400, outlets=4, days=20)
    return path, truth


TAGGER = SyntheticTagger.drawn(len(SCHEME.speakers), len(SCHEME.topics))


def test_shares_from_a_predictions_file_cover_the_known_truth(synthetic):
    """The file's reading and the estimates agree: a labelled sample of the same tagger's output corrects it."""
    path, truth = synthetic
    corpus = read_corpus(path, SCHEME)
    assert corpus.sentences == truth["sentences"]
    calib = synthetic_calibration(TAGGER, groups=1, sentences_per_group=1500, same_coverage=True,
                                  shares=(truth["speaker"], truth["topic"]))
    overall = group_shares("all", corpus.features, Layout(len(SCHEME.topics), len(SCHEME.speakers)),
                           fit_corrections([calib], SCHEME, 300, 1), 300)
    for key in ("speaker", "topic"):
        corrected = np.abs(overall.estimate[key] - truth[key]).mean()
        raw = np.abs(overall.raw[key] - truth[key]).mean()
        assert corrected < raw, (key, corrected, raw)
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
    """The untrained checkpoint's corrections from its real held-out splits on the synthetic file; a sampled
    browser."""
    path, _ = synthetic
    checkpoint = Checkpoint.open(untrained_checkpoint)
    return build_coverage(path, SCHEME, lambda corpus: checkpoint_corrections(checkpoint, None, corpus, 200),
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
    assert all(0 <= float(r["low"]) <= float(r["high"]) <= 1 for r in shares if r["estimate"])
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


@pytest.fixture(scope="module")
def seed_predictions(untrained_checkpoint, tmp_path_factory) -> Path:
    predictions = tmp_path_factory.mktemp("seed-predictions") / "predictions.jsonl"
    predict_files(Tagger.from_pretrained(untrained_checkpoint), [str(ROOT / "seeds")], predictions)
    return predictions


def seed_labels(predictions: Path, article: str, with_sources: bool = False) -> list[dict]:
    """The gold labels of a seed page, keyed as the predictions file names its sentences (article id, index)."""
    lines = (ROOT / "data/annotations" / f"{article}.jsonl").read_text(encoding="utf-8").splitlines()
    gold = {record["text"]: record for record in map(json.loads, filter(str.strip, lines))}
    rows = [row for row in read_rows(predictions, "jsonl") if Path(row["article"]).stem == article]
    assert rows and all(row["text"] in gold for row in rows)
    fields = ("topics", "speaker", *(("sources", "quote") if with_sources else ()))
    return [{"article": row["article"], "index": row["index"], "text": row["text"],
             **{field: gold[row["text"]][field] for field in fields}} for row in rows]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def labelled_seed_pages(predictions: Path, directory: Path) -> tuple[Path, list[dict]]:
    """Both seed pages' gold labels as a LABELLED file for `predictions`."""
    records = (seed_labels(predictions, "000_6121d04cb6a2ecdd") + seed_labels(predictions, "004_7b4b3a878ca4dd7e"))
    return write_jsonl(directory / "sample.jsonl", records), records


def test_a_labelled_sample_of_the_coverage_gives_the_error_rates(untrained_checkpoint, built_project,
                                                                  seed_predictions, tmp_path, monkeypatch):
    monkeypatch.chdir(built_project)
    labelled, records = labelled_seed_pages(seed_predictions, tmp_path)
    out = tmp_path / "report"
    assert main([str(seed_predictions), "--out", str(out), "--model", str(untrained_checkpoint), "--resamples", "50",
                 "--labelled", str(labelled)]) == 0
    with (out / "shares.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    sources = {r["labelled_sentences"] for r in rows}
    n = len(records)
    assert all(f"labelled sample of the coverage: {n}" in s for s in sources), sources
    assert {r["method"] for r in rows} <= {"CC", "PCC", "ACC", "PACC"}
    assert all(r["interval_covers"].startswith("the articles; the ") for r in rows)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert f"{labelled} ({n} labelled sentences of 2 articles of this coverage)" in page
    assert "Expected absolute error of a share" in page


def test_source_labels_in_the_labelled_sample_measure_the_extractor_on_the_coverage(
        untrained_checkpoint, built_project, seed_predictions, tmp_path, monkeypatch):
    monkeypatch.chdir(built_project)
    records = seed_labels(seed_predictions, "000_6121d04cb6a2ecdd", with_sources=True) + seed_labels(
        seed_predictions, "004_7b4b3a878ca4dd7e")  # the second page without source labels: not scored
    labelled = write_jsonl(tmp_path / "sample.jsonl", records)
    out = tmp_path / "report"
    assert main([str(seed_predictions), "--out", str(out), "--model", str(untrained_checkpoint), "--resamples", "50",
                 "--labelled", str(labelled)]) == 0
    check = json.loads((out / "coverage.json").read_text(encoding="utf-8"))["source_check"]
    scored = [r for r in records if "quote" in r]
    predicted = {(row["article"], row["index"]): row for row in read_rows(seed_predictions, "jsonl")}
    attributed = [r for r in scored if r["speaker"] != "none"]
    narration = [r for r in scored if r["speaker"] == "none"]
    assert attributed and narration
    first_right = sum(bool(predicted[(r["article"], r["index"])]["sources"]) and
                      predicted[(r["article"], r["index"])]["sources"][0]["name"] == r["sources"][0]["name"]
                      for r in attributed)
    clean = sum(not predicted[(r["article"], r["index"])]["sources"] for r in narration)
    scores = check["scores"]
    assert scores["sentences"] == len(scored) and check["articles"] == 1
    assert (scores["attributed"], scores["unattributed"]) == (len(attributed), len(narration))
    assert scores["first_source_accuracy"] == pytest.approx(first_right / len(attributed))
    assert scores["none_without_source"] == pytest.approx(clean / len(narration))
    # one article: every resample is that article, so the interval is the point
    assert check["first_source_interval"] == pytest.approx([first_right / len(attributed)] * 2)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert 'id="source-check"' in page and f"of the {len(attributed)} sentences that report" in page

    without = write_jsonl(tmp_path / "plain.jsonl", seed_labels(seed_predictions, "000_6121d04cb6a2ecdd"))
    assert main([str(seed_predictions), "--out", str(tmp_path / "plain"), "--model", str(untrained_checkpoint),
                 "--resamples", "50", "--labelled", str(without)]) == 0
    assert json.loads((tmp_path / "plain" / "coverage.json").read_text(encoding="utf-8"))["source_check"] is None
    assert 'id="source-check"' not in (tmp_path / "plain" / "index.html").read_text(encoding="utf-8")


def test_the_source_check_counts_per_article_and_leaves_an_empty_class_without_interval():
    putin = Source("Владимир Путин", "Путин", 0, 5, "person")
    peskov = Source("Дмитрий Песков", "Песков", 0, 6, "person")
    check = source_check("sample", ["a", "a", "b"], [[putin], [putin], [peskov]], ["indirect"] * 3,
                         ["putin", "putin", "russia_official"], [[putin], [peskov], [peskov]], ["indirect"] * 3,
                         n_resamples=200)
    assert check.articles == 2 and check.scores.first_source_accuracy == pytest.approx(2 / 3)
    low, high = check.first_source_interval
    assert 0.5 <= low <= 2 / 3 <= high <= 1.0  # resamples of {a: 1 of 2, b: 1 of 1}
    assert check.none_clean_interval is None and check.scores.unattributed == 0


@pytest.mark.parametrize("change, message", [
    (lambda r: {**r, "text": r["text"] + " (edited)"}, "reads"),
    (lambda r: {**r, "speaker": "trump"}, "speaker"),
    (lambda r: {**r, "index": 999}, "has no sentence 999"),
])
def test_a_labelled_record_that_does_not_fit_is_refused_and_nothing_is_written(
        untrained_checkpoint, built_project, seed_predictions, tmp_path, capsys, monkeypatch, change, message):
    monkeypatch.chdir(built_project)
    records = seed_labels(seed_predictions, "000_6121d04cb6a2ecdd")
    records[3] = change(records[3])
    labelled = write_jsonl(tmp_path / "sample.jsonl", records)
    out = tmp_path / "report"
    assert main([str(seed_predictions), "--out", str(out), "--model", str(untrained_checkpoint),
                 "--labelled", str(labelled)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {labelled}:4: ") and message in err and "\n" not in err, err
    assert not out.exists()


def test_who_is_quoted_counts_sources_per_outlet_with_intervals_and_diversity(synthetic, tmp_path):
    path, _ = synthetic
    rows = list(read_rows(path, "jsonl"))[:600]
    names = {"russia_official": "Дмитрий Песков", "us_official": "Белый дом", "putin": "Владимир Путин"}
    for i, row in enumerate(rows):
        name = names.get(row["speaker"])
        row["sources"] = [{"name": name, "mention": None, "start": None, "end": None, "type": "person",
                           "relayed_by": None}] if name else []
        row["quote"] = ("direct" if i % 3 == 0 else "indirect") if name else "none"
    with_sources = write_jsonl(tmp_path / "with-sources.jsonl", rows)
    corpus = read_corpus(with_sources, SCHEME)
    assert len(corpus.sources) == len(corpus.articles)
    calib = synthetic_calibration(TAGGER, groups=3, sentences_per_group=60)
    out = build_coverage(with_sources, SCHEME, fit_corrections([calib], SCHEME, 50, 1), "synthetic",
                         tmp_path / "report", n_resamples=50, sample_size=100)
    with (out / "sources.csv").open(encoding="utf-8") as file:
        table = list(csv.DictReader(file))
    overall = {r["measure"] + ":" + r["source"]: r for r in table if r["scope"] == "overall"}
    attributed = sum(1 for r in rows if r["sources"])
    assert int(overall["distinct_sources:"]["attributed_sentences"]) == attributed
    assert float(overall["distinct_sources:"]["value"]) == 3
    peskov = sum(1 for r in rows if r["speaker"] == "russia_official")
    share = overall["source_share:Дмитрий Песков"]
    assert int(share["sentences"]) == peskov and float(share["value"]) == pytest.approx(peskov / attributed, abs=1e-4)
    assert float(share["low"]) <= float(share["value"]) <= float(share["high"])
    assert float(overall["official_share:"]["value"]) == pytest.approx(1.0)
    direct = sum(1 for r in rows if r["quote"] == "direct")
    assert float(overall["direct_share:"]["value"]) == pytest.approx(direct / attributed, abs=1e-4)
    assert {r["group"] for r in table if r["scope"] == "outlet"} == {r["outlet"] for r in rows}
    page = (out / "index.html").read_text(encoding="utf-8")
    assert '<section id="sources">' in page and 'id="f-source"' in page and "Дмитрий Песков" in page
    assert '<section id="sources">' not in (build_coverage(
        path, SCHEME, fit_corrections([calib], SCHEME, 50, 1), "synthetic", tmp_path / "plain", n_resamples=50,
        sample_size=100) / "index.html").read_text(encoding="utf-8")


def test_with_a_labelled_sample_a_run_whose_splits_cannot_be_rebuilt_uses_the_sample_alone(
        untrained_checkpoint, built_project, seed_predictions, tmp_path, monkeypatch):
    import train.coverage.labelled as labelled_module

    def changed_annotations(checkpoint):
        raise labelled_module.EvaluationError("annotations changed since")
    monkeypatch.chdir(built_project)
    monkeypatch.setattr(labelled_module, "held_out_calibration", changed_annotations)
    labelled, records = labelled_seed_pages(seed_predictions, tmp_path)
    out = tmp_path / "report"
    assert main([str(seed_predictions), "--out", str(out), "--model", str(untrained_checkpoint), "--resamples", "50",
                 "--labelled", str(labelled)]) == 0
    with (out / "shares.csv").open(encoding="utf-8") as file:
        assert {r["labelled_sentences"] for r in csv.DictReader(file)} == {
            f"labelled sample of the coverage: {len(records)}"}
    assert main([str(seed_predictions), "--out", str(tmp_path / "without"), "--model", str(untrained_checkpoint)]) == 2
