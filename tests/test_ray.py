"""The Ray engine on a local cluster: same tags as the single-process path, bad input, resume after a kill, coverage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason='the ray extra is not installed: pip install -e ".[ray]"')

from tests.helpers import ROOT  # noqa: E402
from train.coverage.page import build_coverage  # noqa: E402
from train.coverage.tables import read_corpus  # noqa: E402
from train.errors import UsageError  # noqa: E402
from train.modeling.checkpoint import Checkpoint  # noqa: E402
from train.prediction.ray_engine import RayOptions, part_files, predict_on_ray, read_parts  # noqa: E402
from train.prediction.run import predict_files  # noqa: E402
from train.prediction.writers import read_rows  # noqa: E402

SEED_TEXTS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))]
# Two actors of half a CPU each leave one of the cluster's two CPUs for the driver's reading and writing.
TWO_ACTORS = RayOptions(min_actors=2, max_actors=2, cpus_per_actor=0.5)


@pytest.fixture(scope="module", autouse=True)
def cluster():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def articles_file(path: Path, count: int, extra: list[dict] = ()) -> Path:
    """`count` articles cut from the seed pages (a few paragraphs each), with ids and outlets, then `extra`."""
    paragraphs = [p for text in SEED_TEXTS for p in text.split("\n") if p.strip()]
    records = [{"id": f"a{i:03d}", "outlet": f"outlet{i % 3}", "date": f"2021-12-0{1 + i % 7}",
                "text": "\n".join(paragraphs[(i * 3) % len(paragraphs):(i * 3) % len(paragraphs) + 4])}
               for i in range(count)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [*records, *extra]), encoding="utf-8")
    return path


def by_sentence(rows) -> dict[tuple[str, int], dict]:
    """Rows keyed by (article, index), scores to the 4 decimals written (Parquet holds them as float32)."""
    keyed = {}
    for row in rows:
        key = (row["article"], row["index"])
        assert key not in keyed, f"{key} written twice"
        keyed[key] = {**row, **{scores: {label: round(p, 4) for label, p in row[scores].items()}
                                for scores in ("topic_scores", "speaker_scores")}}
    return keyed


def test_tags_equal_the_single_process_path_and_bad_input_is_reported(checkpoint, tagger, tmp_path):
    source = articles_file(tmp_path / "articles.jsonl", 30, extra=[
        {"id": "english", "text": "This article is written in English and is not tagged."}, {"id": "no-text"}])
    local = tmp_path / "local.parquet"  # the same format as the parts: sources are flat columns in Parquet
    predict_files(tagger, [str(source)], local, "parquet", report=lambda line: None)
    reports: list[str] = []
    out = tmp_path / "parts"
    result = predict_on_ray(checkpoint, [str(source)], out, "parquet", TWO_ACTORS, chunk_sentences=40,
                            report=reports.append)

    assert len(part_files(out)) > 2  # several chunks, so both actors had work
    expected, got = by_sentence(read_rows(local, "parquet")), by_sentence(read_parts(out))
    assert got.keys() == expected.keys()
    for key, row in expected.items():
        assert got[key]["topics"] == row["topics"] and got[key]["speaker"] == row["speaker"], key
        assert got[key] == row, key  # the same chunks as the single-process path: the same record, scores too
    assert (result.articles, result.sentences) == (30, len(expected))
    assert result.problems == Counter({"not Russian": 1, "no 'text' field": 1})
    assert any("not Russian" in line for line in reports) and any("no 'text'" in line for line in reports)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    local_summary = json.loads(local.with_name("local.summary.json").read_text(encoding="utf-8"))
    assert summary["total"] == local_summary["total"] and summary["by_outlet"] == local_summary["by_outlet"]
    assert summary["by_article"] == local_summary["by_article"]


def test_a_duplicate_id_stops_the_job_before_any_work(checkpoint, tmp_path):
    source = articles_file(tmp_path / "articles.jsonl", 5)
    source.write_text(source.read_text(encoding="utf-8") + source.read_text(encoding="utf-8").splitlines()[2] + "\n",
                      encoding="utf-8")
    out = tmp_path / "parts"
    with pytest.raises(UsageError, match="article id 'a002' occurs twice"):
        predict_on_ray(checkpoint, [str(source)], out, "jsonl", TWO_ACTORS)
    assert not out.exists()


def test_an_existing_folder_needs_resume_or_overwrite(checkpoint, tmp_path):
    source = articles_file(tmp_path / "articles.jsonl", 4)
    out = tmp_path / "parts"
    predict_on_ray(checkpoint, [str(source)], out, "jsonl", TWO_ACTORS)
    with pytest.raises(UsageError, match="already exists"):
        predict_on_ray(checkpoint, [str(source)], out, "jsonl", TWO_ACTORS)
    with pytest.raises(UsageError, match="resume it with --format jsonl"):
        predict_on_ray(checkpoint, [str(source)], out, "parquet", TWO_ACTORS, resume=True)
    result = predict_on_ray(checkpoint, [str(source)], out, "parquet", TWO_ACTORS, overwrite=True)
    assert result.articles == 4 and {p.suffix for p in part_files(out)} == {".parquet"}
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(UsageError, match="not a part file"):
        predict_on_ray(checkpoint, [str(source)], tmp_path / "mine", "jsonl", TWO_ACTORS, overwrite=True)


def test_a_parquet_dataset_with_id_and_text_columns(checkpoint, tagger, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [json.loads(line) for line in
               articles_file(tmp_path / "articles.jsonl", 6).read_text(encoding="utf-8").splitlines()]
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "articles.parquet")
    out = tmp_path / "parts"
    predict_on_ray(checkpoint, [str(tmp_path / "articles.parquet")], out, "jsonl", TWO_ACTORS)
    local = tmp_path / "local.jsonl"
    predict_files(tagger, [str(tmp_path / "articles.jsonl")], local)
    assert by_sentence(read_parts(out)) == by_sentence(read_rows(local, "jsonl"))


def test_resume_after_a_kill_tags_every_article_exactly_once(checkpoint, tmp_path):
    source = articles_file(tmp_path / "articles.jsonl", 120)
    out = tmp_path / "parts"
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_ADDRESS")}
    # Its own local cluster in a session of its own, killed (driver, raylet and workers) once parts are committed.
    job = subprocess.Popen([sys.executable, "-m", "train.cli.predict", str(source), "--engine", "ray", "--out",
                            str(out), "--model", str(checkpoint), "--actors", "1", "--cpus-per-actor", "0.5",
                            "--chunk-sentences", "10", "--format", "parquet", "--quiet"], env={**env, "HF_HUB_OFFLINE": "1"},
                           start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while len(part_files(out)) < 3 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    time.sleep(1)
    before = {p.name for p in part_files(out)}
    assert 3 <= len(before) and not (out / "summary.json").exists(), "the job ended before it could be killed"

    result = predict_on_ray(checkpoint, [str(source)], out, "parquet", TWO_ACTORS, resume=True)
    rows = list(read_parts(out))
    articles_per_part = [{row["article"] for row in read_rows(p, "parquet")} for p in part_files(out)]
    counts = Counter(article for part in articles_per_part for article in part)
    assert set(counts) == {f"a{i:03d}" for i in range(120)} and set(counts.values()) == {1}
    assert result.already_done > 0 and result.already_done + result.articles == 120
    assert before <= {p.name for p in part_files(out)}  # committed parts were kept, not tagged again
    by_sentence(rows)
    assert not list(out.glob(".part-*"))


def test_coverage_of_a_part_folder_on_ray_equals_the_local_report(checkpoint, tmp_path):
    source = articles_file(tmp_path / "articles.jsonl", 24)
    out = tmp_path / "parts"
    predict_on_ray(checkpoint, [str(source)], out, "parquet", TWO_ACTORS, chunk_sentences=30)
    scheme = Checkpoint.open(checkpoint).scheme
    local, on_ray = read_corpus(out, scheme, sample_size=20), read_corpus(out, scheme, sample_size=20, engine="ray")
    assert [a.id for a in on_ray.articles] == [a.id for a in local.articles]
    assert (on_ray.features == local.features).all() and on_ray.sample == local.sample

    from train.coverage.labelled import checkpoint_corrections

    corrections = checkpoint_corrections(Checkpoint.open(checkpoint), None, local, 50)
    pages = {engine: build_coverage(out, scheme, corrections, str(checkpoint), tmp_path / engine, n_resamples=50,
                                    sample_size=20, engine=engine) for engine in ("local", "ray")}
    for name in ("shares.csv", "articles.csv"):
        assert (pages["ray"] / name).read_text(encoding="utf-8") == (pages["local"] / name).read_text(encoding="utf-8")
