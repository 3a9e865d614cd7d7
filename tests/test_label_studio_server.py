"""The whole loop against a real Label Studio server on 127.0.0.1 (installed by `make label-studio` or .ci/run)."""

import json
import os
import re
import socket
from pathlib import Path

import pytest

from tests.helpers import ROOT
from train.annotation import label_studio as ls
from train.annotation.suggest import suggest
from train.cli.data import main as data_main
from train.cli.import_labels import main as import_labels_main
from train.modeling.tagger import Tagger

EXECUTABLE = Path(os.environ.get("LABEL_STUDIO_EXECUTABLE", ls.executable(ROOT / ".label-studio")))
pytestmark = pytest.mark.skipif(
    not EXECUTABLE.is_file(),
    reason=f"Label Studio is not installed at {EXECUTABLE}; `make label-studio` (or .ci/run) installs it")

ARTICLES = [
    {"id": "ria-1", "outlet": "РИА", "text": "Путин провёл разговор с Байденом. Он призвал США дать гарантии "
                                               "нерасширения НАТО. Стороны обсудили Украину."},
    {"id": "tass-2", "outlet": "ТАСС", "text": "Байден пригрозил санкциями. Эксперты назвали беседу полезной."},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port, token = free_port(), "0123456789abcdef0123"
    log = tmp_path / "label-studio.log"
    process = ls.start_server(EXECUTABLE, tmp_path / "ls-data", port, "tester@example.com", "not-a-secret-1",
                              token, log)
    url = f"http://127.0.0.1:{port}"
    try:
        ls.wait_until_up(url, process, log)
        yield ls.LabelStudioClient(url, token)
    finally:
        process.terminate()
        process.wait(timeout=30)


def two_sources(text: str) -> list[dict]:
    """The sentence's second and first words as its sources, the second the main one: against the text order,
    so only the rank can bring them back in this order."""
    first, second = list(re.finditer(r"\w+", text))[:2]
    return [{"name": m.group(), "mention": m.group(), "start": m.start(), "end": m.end(), "type": "person",
             "relayed_by": None} for m in (second, first)]


def test_suggest_label_export_import_and_build_against_a_real_server(server, project, untrained_checkpoint):
    feed = project / "feed.jsonl"
    feed.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in ARTICLES), encoding="utf-8")
    suggest(Tagger.from_pretrained(untrained_checkpoint), [str(feed)], 5, project / "suggestions",
            project / "configs/labels.yaml", project / "data/annotations", model_version="untrained")
    tasks = json.loads((project / "suggestions/tasks.json").read_text(encoding="utf-8"))
    config = (project / "suggestions/labeling_config.xml").read_text(encoding="utf-8")

    project_id, created = ls.open_project(server, "loop test", config, tasks)
    assert created
    assert ls.open_project(server, "loop test", config, tasks) == (project_id, False)  # no second import
    task_ids = server.task_ids(project_id)
    assert len(task_ids) == len(tasks) == 5

    exported = {t["id"]: t for t in server.export(project_id)}
    assert all(t["predictions"] for t in exported.values())  # the pre-annotations were accepted
    labels = {}
    for n, task_id in enumerate(task_ids):
        if n == 0:
            server.annotate(task_id, [], cancelled=True)
            continue
        topics, speaker = (["nato"], "putin") if n % 2 else ([], "none")
        data = exported[task_id]["data"]
        sources, quote = (two_sources(data["text"]), "indirect") if n % 2 else ([], "none")
        server.annotate(task_id, [ls.choice_result(ls.TOPICS, topics), ls.choice_result(ls.SPEAKER, [speaker]),
                                  *ls.source_results(sources, quote)])
        labels[(data["article"], data["index"])] = (topics, speaker, data["context"], sources, quote)

    export_file = project / "export.json"
    export_file.write_text(json.dumps(server.export(project_id), ensure_ascii=False), encoding="utf-8")
    assert import_labels_main([str(export_file), "--name", "first_batch"]) == 0
    records = [json.loads(line) for line in
               (project / "data/annotations/first_batch.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {(r["article"], r["index"]): (r["topics"], r["speaker"], r["context"], r["sources"], r["quote"])
            for r in records} == labels

    assert data_main([]) == 0  # `make data` builds with the partially labelled articles
