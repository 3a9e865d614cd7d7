"""Batch prediction: output schema, order/batch invariance, int8, bad input, resume and the summary."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import ROOT, make_untrained_checkpoint
from train.cli.predict import main
from train.data.segment import split_sentences
from train.errors import UsageError
from train.modeling.tagger import Tagger
from train.prediction.html_text import html_to_text
from train.prediction.run import predict_files
from train.prediction.summary import summarize, summary_path
from train.prediction.writers import read_rows

SEED_TEXTS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))]
SENTENCE_KEYS = {"article", "outlet", "date", "url", "index", "text", "topics", "topic_scores", "speaker",
                 "speaker_scores", "sources", "quote"}


def articles_jsonl(path: Path, count: int) -> Path:
    """`count` articles built from seed sentences, with metadata."""
    sentences = [s for text in SEED_TEXTS for s in split_sentences(text)]
    with path.open("w", encoding="utf-8") as file:
        for i in range(count):
            text = "\n".join(sentences[(i * 7) % len(sentences):][:5 + i % 4])
            record = {"id": f"a{i}", "text": text, "outlet": ["Sputnik", "TASS"][i % 2], "date": "2021-12-08",
                      "url": f"https://example.org/{i}"}
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_same_predictions(a: list[dict], b: list[dict]) -> None:
    assert [(r["article"], r["index"], r["text"], r["topics"], r["speaker"]) for r in a] == \
           [(r["article"], r["index"], r["text"], r["topics"], r["speaker"]) for r in b]
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        assert np.allclose(list(x["topic_scores"].values()), list(y["topic_scores"].values()), atol=2e-4)
        assert np.allclose(list(x["speaker_scores"].values()), list(y["speaker_scores"].values()), atol=2e-4)


def test_output_schema_labels_and_metadata(tagger, tmp_path):
    (tmp_path / "in").mkdir()
    for i, text in enumerate(SEED_TEXTS):
        (tmp_path / "in" / f"seed{i}.txt").write_text(text, encoding="utf-8")
    jsonl = articles_jsonl(tmp_path / "in" / "batch.jsonl", 3)
    out = tmp_path / "out" / "predictions.jsonl"
    result = predict_files(tagger, [str(tmp_path / "in")], out)
    rows = lines(out)
    assert result.skipped == 0 and result.sentences == len(rows)
    thresholds = dict(zip(tagger.topics, tagger.thresholds))
    for row in rows:
        assert set(row) == SENTENCE_KEYS
        assert list(row["topic_scores"]) == tagger.topics and list(row["speaker_scores"]) == tagger.speakers
        for topic, score in row["topic_scores"].items():
            if abs(score - thresholds[topic]) > 1e-3:
                assert (topic in row["topics"]) == (score > thresholds[topic])
        assert row["speaker"] == max(row["speaker_scores"], key=row["speaker_scores"].get)
    by_article: dict[str, list[dict]] = {}
    for row in rows:
        by_article.setdefault(row["article"], []).append(row)
    seed_id = str((tmp_path / "in" / "seed0.txt").resolve())
    assert [r["text"] for r in by_article[seed_id]] == split_sentences(SEED_TEXTS[0])
    assert [r["index"] for r in by_article[seed_id]] == list(range(len(by_article[seed_id])))
    record = json.loads(jsonl.read_text(encoding="utf-8").splitlines()[1])
    assert {(r["outlet"], r["date"], r["url"]) for r in by_article["a1"]} == \
           {(record["outlet"], record["date"], record["url"])}
    assert by_article[seed_id][0]["outlet"] is None
    assert len({tuple(r["topics"]) for r in rows}) > 1 and len({r["speaker"] for r in rows}) > 1


def test_predictions_do_not_depend_on_batch_size_or_order(checkpoint):
    articles = [split_sentences(text) for text in SEED_TEXTS] + [["Путин и Байден говорили два часа."]]
    reference = Tagger.from_pretrained(checkpoint, device="cpu", batch_size=64).tag_sentences(articles)
    one_by_one = Tagger.from_pretrained(checkpoint, device="cpu", batch_size=1).tag_sentences(articles)
    reversed_order = Tagger.from_pretrained(checkpoint, device="cpu", batch_size=7).tag_sentences(articles[::-1])[::-1]
    flat = [dict(s, article=str(i)) for i, article in enumerate(reference) for s in article]
    for other in (one_by_one, reversed_order):
        assert_same_predictions(flat, [dict(s, article=str(i)) for i, article in enumerate(other) for s in article])


def test_previous_sentence_is_the_context(tagger, tiny_encoder, tmp_path):
    sentence = "Песков заявил, что переговоры прошли конструктивно."
    after_a = tagger.tag_sentences([["Байден пригрозил санкциями.", sentence]])[0][1]
    after_b = tagger.tag_sentences([["Кремль сообщил об итогах.", sentence]])[0][1]
    assert after_a["topic_scores"] != after_b["topic_scores"]
    no_context = Tagger.from_pretrained(make_untrained_checkpoint(tmp_path / "plain", tiny_encoder, use_context=False),
                                        device="cpu")
    after_a = no_context.tag_sentences([["Байден пригрозил санкциями.", sentence]])[0][1]
    after_b = no_context.tag_sentences([["Кремль сообщил об итогах.", sentence]])[0][1]
    assert after_a["topic_scores"] == after_b["topic_scores"]


def test_predict_api_returns_one_result_per_article(tagger):
    results = tagger.predict(SEED_TEXTS)
    assert [len(r) for r in results] == [len(split_sentences(t)) for t in SEED_TEXTS]
    assert tagger.predict(SEED_TEXTS[1]) == results[1:]
    assert set(results[0][0]) == {"index", "text", "topics", "topic_scores", "speaker", "speaker_scores", "sources",
                                  "quote"}


def test_int8_agrees_with_fp32(checkpoint):
    articles = [split_sentences(text) for text in SEED_TEXTS]
    fp32 = [s for a in Tagger.from_pretrained(checkpoint, device="cpu").tag_sentences(articles) for s in a]
    int8_tagger = Tagger.from_pretrained(checkpoint, int8=True)
    query = int8_tagger.model.encoder.encoder.layer[0].attention.self.query
    assert isinstance(query, torch.ao.nn.quantized.dynamic.Linear)
    int8 = [s for a in int8_tagger.tag_sentences(articles) for s in a]
    assert np.mean([a["speaker"] == b["speaker"] for a, b in zip(fp32, int8)]) >= 0.95
    assert np.mean([a["topics"] == b["topics"] for a, b in zip(fp32, int8)]) >= 0.9
    differences = [abs(a["topic_scores"][t] - b["topic_scores"][t]) for a, b in zip(fp32, int8) for t in a["topic_scores"]]
    assert max(differences) < 0.1


def test_bad_inputs_are_skipped_reported_once_and_counted(tagger, tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text(SEED_TEXTS[1], encoding="utf-8")
    (folder / "cp1251.txt").write_bytes(SEED_TEXTS[1].encode("cp1251"))
    (folder / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    (folder / "empty.txt").write_text("", encoding="utf-8")
    (folder / "english.txt").write_text("The presidents spoke for two hours. " * 20, encoding="utf-8")
    (folder / "locked.txt").write_text(SEED_TEXTS[1], encoding="utf-8")
    big = (SEED_TEXTS[0] + "\n") * (1_100_000 // len(SEED_TEXTS[0].encode("utf-8")))
    (folder / "big.txt").write_text(big + "слово " * 5000, encoding="utf-8")  # also one 5000-word sentence
    (folder / "batch.jsonl").write_text("\n".join([
        json.dumps({"id": "ok", "text": SEED_TEXTS[1]}, ensure_ascii=False), "",
        json.dumps({"id": "no-text", "title": "Кремль"}), "{broken", ""]), encoding="utf-8")
    original_read_bytes = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied")
        return original_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    out = tmp_path / "predictions.jsonl"
    reports: list[str] = []
    result = predict_files(tagger, [str(folder)], out, report=reports.append)
    assert dict(result.problems) == {"binary file": 1, "empty": 1, "not Russian": 1,
                                     "unreadable": 1, "empty line": 1, "no 'text' field": 1, "invalid JSON": 1}
    assert len(reports) == result.skipped + 1 == 8
    for name in ("cp1251.txt", "binary.txt", "empty.txt", "english.txt", "locked.txt"):
        assert sum(name in report for report in reports) == 1
    assert any("cp1251.txt: not UTF-8; read as cp1251 (detected)" in r for r in reports)
    assert any("batch.jsonl:2" in r for r in reports) and any("batch.jsonl:3" in r for r in reports)
    rows = lines(out)
    written = Counter(row["article"] for row in rows)
    ids = {name: str((folder / name).resolve()) for name in ("good.txt", "big.txt", "cp1251.txt")}
    assert set(written) == {*ids.values(), "ok"}
    assert written[ids["big.txt"]] > 4000
    assert [r["text"] for r in rows if r["article"] == ids["cp1251.txt"]] == split_sentences(SEED_TEXTS[1])


def test_exit_status_says_whether_anything_was_skipped(checkpoint, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text(SEED_TEXTS[1], encoding="utf-8")
    assert main([str(folder), "--out", str(tmp_path / "a.jsonl"), "--model", str(checkpoint)]) == 0
    (folder / "empty.txt").write_text("\n", encoding="utf-8")
    assert main([str(folder), "--out", str(tmp_path / "b.jsonl"), "--model", str(checkpoint)]) == 1
    assert len(lines(tmp_path / "b.jsonl")) == len(split_sentences(SEED_TEXTS[1]))


def test_resume_after_a_kill_gives_the_uninterrupted_output(tagger, tmp_path):
    jsonl = articles_jsonl(tmp_path / "batch.jsonl", 12)
    full = tmp_path / "full.jsonl"
    predict_files(tagger, [str(jsonl)], full, chunk_sentences=10)
    data = full.read_bytes()
    for cut in (len(data) // 3, len(data) // 2 + 17, len(data) - 5):  # mid-line, as a kill leaves it
        partial = tmp_path / f"partial{cut}.jsonl"
        partial.write_bytes(data[:cut])
        result = predict_files(tagger, [str(jsonl)], partial, resume=True, chunk_sentences=10)
        assert result.already_done > 0
        assert_same_predictions(lines(partial), lines(full))
        assert json.loads(summary_path(partial).read_text()) == \
               dict(json.loads(summary_path(full).read_text()), output=str(partial))
    before = full.read_bytes()
    predict_files(tagger, [str(jsonl)], full, resume=True)
    assert_same_predictions(lines(full), [json.loads(line) for line in before.decode().splitlines()])


def test_resume_after_a_real_kill(checkpoint, tmp_path):
    jsonl = articles_jsonl(tmp_path / "batch.jsonl", 300)
    full, killed = tmp_path / "full.jsonl", tmp_path / "killed.jsonl"
    command = [sys.executable, "-m", "train.cli.predict", str(jsonl), "--model", str(checkpoint), "--quiet",
               "--chunk-sentences", "4", "--device", "cpu"]
    process = subprocess.Popen([*command, "--out", str(killed)], cwd=ROOT, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline and \
            (not killed.exists() or killed.stat().st_size < 20_000):
        time.sleep(0.05)
    process.kill()
    process.wait()
    cpu = ["--model", str(checkpoint), "--quiet", "--device", "cpu"]
    assert main([str(jsonl), "--out", str(killed), "--resume", *cpu]) == 0
    assert main([str(jsonl), "--out", str(full), *cpu]) == 0
    assert_same_predictions(lines(killed), lines(full))


def test_summary_counts_match_the_sentence_lines(tagger, tmp_path):
    out = tmp_path / "predictions.jsonl"
    predict_files(tagger, [str(articles_jsonl(tmp_path / "batch.jsonl", 6))], out)
    rows = lines(out)
    summary = json.loads(summary_path(out).read_text(encoding="utf-8"))
    total = summary["total"]
    assert total["sentences"] == len(rows) and total["articles"] == 6
    assert sum(total["speakers"].values()) == len(rows)
    for topic in tagger.topics:
        assert total["topics"][topic] == sum(topic in r["topics"] for r in rows)
        assert sum(total["topic_by_speaker"][topic].values()) == total["topics"][topic]
    assert total["no_topic"] == sum(not r["topics"] for r in rows)
    assert summary["by_article"]["a3"]["sentences"] == sum(r["article"] == "a3" for r in rows)
    assert summary["by_outlet"]["TASS"]["articles"] == 3
    speaker = rows[0]["speaker"]
    assert summary["by_outlet"]["Sputnik"]["speakers"][speaker] == \
           sum(r["outlet"] == "Sputnik" and r["speaker"] == speaker for r in rows)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_hold_the_same_predictions(tagger, tmp_path, fmt):
    jsonl = articles_jsonl(tmp_path / "batch.jsonl", 5)
    predict_files(tagger, [str(jsonl)], tmp_path / "p.jsonl", chunk_sentences=8)
    out = tmp_path / f"p.{fmt}"
    predict_files(tagger, [str(jsonl)], out, fmt, chunk_sentences=8)
    reference, rows = lines(tmp_path / "p.jsonl"), list(read_rows(out, fmt))
    assert [(r["article"], r["text"], r["topics"], r["speaker"], r["outlet"]) for r in rows] == \
           [(r["article"], r["text"], r["topics"], r["speaker"], r["outlet"]) for r in reference]
    summary = json.loads(summary_path(out).read_text(encoding="utf-8"))
    assert summary["total"] == summarize(reference, tagger.topics, tagger.speakers)["total"]
    with pytest.raises(UsageError, match="JSONL"):
        predict_files(tagger, [str(jsonl)], out, fmt, resume=True)


def test_stdin_lines_are_articles(checkpoint, tmp_path, monkeypatch, capsys):
    record = json.dumps({"text": SEED_TEXTS[1], "outlet": "TASS"}, ensure_ascii=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"Путин и Байден говорили два часа. Они договорились.\n{record}\n"))
    out = tmp_path / "p.jsonl"
    assert main(["-", "--out", str(out), "--model", str(checkpoint), "--quiet"]) == 0
    rows = lines(out)
    assert [r["text"] for r in rows if r["article"] == "stdin:1"] == ["Путин и Байден говорили два часа.",
                                                                      "Они договорились."]
    assert {r["outlet"] for r in rows if r["article"] == "stdin:2"} == {"TASS"}
    assert "2 articles" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--model", "/nonexistent/run"], ["--model", str(ROOT / "seeds")]])
def test_bad_model_is_one_clear_line(argv, tmp_path, capsys):
    assert main([str(ROOT / "seeds"), "--out", str(tmp_path / "p.jsonl"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_missing_input_is_a_usage_error(checkpoint, tmp_path, capsys):
    assert main(["/nonexistent/articles", "--out", str(tmp_path / "p.jsonl"), "--model", str(checkpoint)]) == 2
    assert "no such input" in capsys.readouterr().err


def test_html_is_reduced_to_article_text(tagger, tmp_path):
    page = ("<html><head><meta charset='windows-1251'><title>Сайт</title><script>var x = 1;</script></head>"
            "<body><nav>Главная | Политика</nav><article><h1>Кремль оценил переговоры</h1>"
            "<p>Песков назвал <a href='/x'>переговоры</a> <b>деловыми</b>. Встреча шла два часа.</p>"
            "<figure><img src='a.jpg'><figcaption>Фото: пресс-служба</figcaption></figure></article>"
            "<footer>© 2021</footer></body></html>")
    assert html_to_text(page) == ("Кремль оценил переговоры\nПесков назвал переговоры деловыми. Встреча шла два часа.\n"
                                  "Фото: пресс-служба")
    (tmp_path / "page.html").write_bytes(page.encode("cp1251"))
    out = tmp_path / "p.jsonl"
    predict_files(tagger, [str(tmp_path / "page.html")], out)
    assert [r["text"] for r in lines(out)] == ["Кремль оценил переговоры", "Песков назвал переговоры деловыми.",
                                              "Встреча шла два часа.", "Фото: пресс-служба"]


def run_predict(checkpoint: Path, *args: str) -> subprocess.CompletedProcess:
    """The command as a user runs it, in its own process, with a time limit: a run that reads its own output
    never ends."""
    return subprocess.run([sys.executable, "-m", "train.cli.predict", *args, "--model", str(checkpoint), "--quiet",
                           "--device", "cpu", "--chunk-sentences", "8"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def seed_folder(folder: Path, count: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"article{i}.txt").write_text(SEED_TEXTS[i % len(SEED_TEXTS)], encoding="utf-8")
    return folder


def test_an_output_inside_an_input_directory_is_never_read_as_input(checkpoint, tmp_path):
    folder = seed_folder(tmp_path / "in")
    out = folder / "predictions.jsonl"
    expected = sum(len(split_sentences(SEED_TEXTS[i % len(SEED_TEXTS)])) for i in range(3))
    for extra in ([], ["--overwrite"]):  # the second run finds the first one's output and summary in its input
        result = run_predict(checkpoint, str(folder), "--out", str(out), *extra)
        assert result.returncode == 0, result.stderr[-2000:]
        assert len(lines(out)) == expected and json.loads(summary_path(out).read_text())["total"]["articles"] == 3
    (folder / "older.jsonl").write_bytes(out.read_bytes())  # an earlier run's output, kept under another name
    result = run_predict(checkpoint, str(folder), "--out", str(out), "--overwrite")
    assert result.returncode == 1 and "older.jsonl: a prediction output" in result.stderr
    assert len(lines(out)) == expected


def test_an_output_that_is_an_input_is_refused(checkpoint, tmp_path, capsys):
    jsonl = articles_jsonl(tmp_path / "same.jsonl", 3)
    before = jsonl.read_bytes()
    for argv in ([str(jsonl), "--out", str(jsonl)], [str(jsonl), "--out", str(jsonl), "--overwrite"],
                 [str(jsonl), "--out", str(tmp_path / "." / "same.jsonl"), "--resume"]):
        assert main([*argv, "--model", str(checkpoint), "--quiet"]) == 2
        assert "is also an input" in capsys.readouterr().err
    assert jsonl.read_bytes() == before


def test_an_existing_output_is_replaced_only_when_asked_and_only_by_a_complete_one(checkpoint, tagger, tmp_path,
                                                                                capsys, monkeypatch):
    jsonl = articles_jsonl(tmp_path / "batch.jsonl", 6)
    out = tmp_path / "predictions.jsonl"
    predict_files(tagger, [str(jsonl)], out)
    earlier = out.read_bytes()
    assert main([str(jsonl), "--out", str(out), "--model", str(checkpoint), "--quiet"]) == 2
    assert "already exists: pass --overwrite to replace it, or --resume to continue it" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "blank.txt").write_text("\n", encoding="utf-8")
    assert main([str(tmp_path / "empty"), "--out", str(out), "--model", str(checkpoint), "--overwrite", "--quiet"]) == 2
    assert "no article to tag" in capsys.readouterr().err

    def fail_on_the_second_chunk(articles, progress=None, dates=None, calls=[]):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return Tagger.tag_sentences(tagger, articles, progress, dates)

    monkeypatch.setattr(tagger, "tag_sentences", fail_on_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        predict_files(tagger, [str(jsonl)], out, overwrite=True, chunk_sentences=5)
    assert out.read_bytes() == earlier and sorted(p.name for p in tmp_path.iterdir()) == \
           ["batch.jsonl", "empty", "predictions.jsonl", "predictions.summary.json"]


def test_resume_does_not_depend_on_how_the_input_path_is_spelled(tagger, tmp_path, monkeypatch):
    seed_folder(tmp_path / "in")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "predictions.jsonl"
    first = predict_files(tagger, ["in"], out)
    summary = summary_path(out).read_text(encoding="utf-8")
    again = predict_files(tagger, [str(tmp_path / "in") + "/"], out, resume=True)
    assert (first.articles, again.articles, again.already_done) == (3, 1, 2)  # the last article is always redone
    assert summary_path(out).read_text(encoding="utf-8") == summary


def test_a_directory_without_readable_articles_fails(checkpoint, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "notes.md").write_text("Путин и Байден говорили два часа.", encoding="utf-8")
    (folder / "english.txt").write_text("The presidents spoke for two hours. " * 20, encoding="utf-8")
    out = tmp_path / "predictions.jsonl"
    assert main([str(folder), "--out", str(out), "--model", str(checkpoint), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "english.txt: not Russian" in err and "no article to tag" in err and ".txt, .html" in err
    assert not out.exists() and not summary_path(out).exists()


def test_progress_counts_sentences_batch_by_batch(checkpoint):
    articles = [split_sentences(text) for text in SEED_TEXTS]
    batches: list[int] = []
    Tagger.from_pretrained(checkpoint, device="cpu", batch_size=7).tag_sentences(articles, progress=batches.append)
    total = sum(len(a) for a in articles)
    assert sum(batches) == total and len(batches) == -(-total // 7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_tagging_on_the_gpu_agrees_with_the_cpu(checkpoint, tagger, tmp_path):
    articles = [split_sentences(text) for text in SEED_TEXTS]
    gpu = Tagger.from_pretrained(checkpoint, device="cuda")
    cpu_rows = [s for a in tagger.tag_sentences(articles) for s in a]
    gpu_rows = [s for a in gpu.tag_sentences(articles) for s in a]
    assert np.mean([a["speaker"] == b["speaker"] for a, b in zip(cpu_rows, gpu_rows)]) >= 0.9
    assert max(abs(a["topic_scores"][t] - b["topic_scores"][t]) for a, b in zip(cpu_rows, gpu_rows)
               for t in tagger.topics) < 0.05
    out = tmp_path / "gpu.jsonl"
    assert predict_files(gpu, [str(articles_jsonl(tmp_path / "batch.jsonl", 4))], out).articles == 4


def test_without_the_ray_extra_the_ray_engine_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    (tmp_path / "a.txt").write_text("Путин провёл переговоры с Байденом.", encoding="utf-8")
    assert main([str(tmp_path / "a.txt"), "--engine", "ray", "--out", str(tmp_path / "parts")]) == 2
    assert capsys.readouterr().err == 'error: the Ray engine needs the ray extra: pip install -e ".[ray]"\n'
    assert not (tmp_path / "parts").exists()


@pytest.mark.parametrize("flags, message", [
    (["--actors", "2"], "--actors needs --engine ray"),
    (["--engine", "ray", "--actors", "3:1"], "need 1 <= MIN <= MAX"),
    (["--engine", "ray", "--actors", "two"], "give a number of actors"),
    (["--engine", "ray", "--cpus-per-actor", "0"], "must be above 0"),
    (["--engine", "ray", "--format", "csv"], "jsonl or parquet part files"),
    (["--engine", "ray", "--threads", "2"], "--cpus-per-actor sets them"),
])
def test_ray_flags_are_checked_before_any_work(tmp_path, capsys, flags, message):
    (tmp_path / "a.txt").write_text("Путин провёл переговоры с Байденом.", encoding="utf-8")
    assert main([str(tmp_path / "a.txt"), "--out", str(tmp_path / "parts"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_sources_follow_the_predicted_speaker_and_flatten_into_csv_and_parquet(tagger, tmp_path):
    jsonl = articles_jsonl(tmp_path / "batch.jsonl", 4)
    predict_files(tagger, [str(jsonl)], tmp_path / "p.jsonl")
    rows = lines(tmp_path / "p.jsonl")
    for row in rows:
        assert row["quote"] in ("direct", "indirect", "none")
        assert (row["quote"] == "none") == (not row["sources"])
        if row["speaker"] == "none":  # the gate: a `none` sentence gets no source
            assert row["sources"] == []
        for source in row["sources"]:
            assert set(source) == {"name", "mention", "start", "end", "type", "relayed_by"}
            if source["start"] is not None:
                assert row["text"][source["start"]:source["end"]] == source["mention"]
    assert any(row["sources"] for row in rows)
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"p.{fmt}"
        predict_files(tagger, [str(jsonl)], out, fmt)
        flat = list(read_rows(out, fmt))
        assert [r["source_names"] for r in flat] == ["; ".join(s["name"] for s in r["sources"]) for r in rows]
        assert [r["first_source"] for r in flat] == [r["sources"][0]["name"] if r["sources"] else "" for r in rows]
        assert [r["quote"] for r in flat] == [r["quote"] for r in rows]


def test_a_tagger_without_sources_writes_none(checkpoint, tmp_path):
    plain = Tagger.from_pretrained(checkpoint, device="cpu", sources=False)
    [article] = plain.predict(SEED_TEXTS[1])
    assert all("sources" not in row and "quote" not in row for row in article)


def test_each_article_is_searched_for_sources_as_of_its_own_date(untrained_checkpoint, tmp_path):
    tagger = Tagger.from_pretrained(untrained_checkpoint)
    searched = tagger.sources.extract
    dates = []

    def recording(sentences, speakers=None, date=None, confidences=None):
        dates.append(date)
        return searched(sentences, speakers, date, confidences)

    tagger.sources.extract = recording
    inputs = tmp_path / "articles.jsonl"
    inputs.write_text("".join(json.dumps({"id": f"a{i}", "text": "Песков заявил журналистам о переговорах.",
                                          **({"date": date} if date else {})}, ensure_ascii=False) + "\n"
                              for i, date in enumerate(["2022-06-01", None, "2021-07-09"])), encoding="utf-8")
    predict_files(tagger, [str(inputs)], tmp_path / "out.jsonl")
    assert dates == ["2022-06-01", None, "2021-07-09"]
