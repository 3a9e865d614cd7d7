"""`make import-labels`: a Label Studio JSON export -> `data/annotations/<name>.jsonl`.

Only submitted annotations count: a skipped or cancelled task is left out, and
so is a task nobody has labelled yet. Two annotators who disagree are never
resolved silently: the task is reported with both answers and left out, unless
one annotation is marked as ground truth in Label Studio. Every problem names
the task id; tasks with problems are left out and the rest is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from train.annotation.label_studio import labels_from_result, sources_from_result
from train.atomic import write_file_atomically
from train.data.annotations import DataError, parse_lines, validate_record
from train.data.scheme import LabelScheme
from train.errors import UserError

METADATA_FIELDS = ("outlet", "date")


@dataclass
class ImportResult:
    out: Path
    records: list[dict]
    problems: list[str] = field(default_factory=list)
    skipped: int = 0  # skipped or cancelled in Label Studio
    unlabelled: int = 0  # no annotation yet


def _labelled_elsewhere(annotations_dir: Path, out: Path) -> dict[tuple[str, int], str]:
    """(article, index) -> path:line of every sentence already labelled in another annotation file."""
    labelled = {}
    for path in sorted(annotations_dir.glob("*.jsonl")):
        if path.resolve() == out.resolve():
            continue
        for where, record, json_error in parse_lines(path):
            # A broken line is `make data`'s to report; here it only cannot be a duplicate.
            if not json_error and isinstance(record, dict) and "article" in record and "index" in record:
                labelled.setdefault((record["article"], record["index"]), where)
    return labelled


def _annotation_labels(annotation: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    topics, speakers = labels_from_result(annotation.get("result") or [])
    return tuple(sorted(topics)), tuple(speakers)


def _record_from_task(task: dict, where: str, scheme: LabelScheme) -> tuple[dict | None, list[str] | None, str]:
    """(record, problems, outcome): outcome is 'labelled', 'skipped' or 'unlabelled'."""
    data = task.get("data") if isinstance(task.get("data"), dict) else {}
    missing = [key for key in ("article", "index", "text") if key not in data]
    if missing:
        return None, [f"{where}: task data lacks {', '.join(missing)}; import only tasks written by `make suggest` "
                      "or `make audit`"], "labelled"
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
    submitted = [a for a in annotations if not a.get("was_cancelled")]
    if not submitted:
        return None, None, "skipped" if annotations else "unlabelled"
    answers = {_annotation_labels(a) for a in submitted}
    if len(answers) > 1:
        ground_truth = [a for a in submitted if a.get("ground_truth")]
        if len(ground_truth) != 1:
            listed = "; ".join(f"annotation {a.get('id')} by user {a.get('completed_by')}: topics "
                               f"{list(_annotation_labels(a)[0])} speaker {list(_annotation_labels(a)[1])}"
                               for a in submitted)
            return None, [f"{where}: annotations disagree ({listed}); settle it in Label Studio (fix one, or mark one "
                          "as ground truth) and export again"], "labelled"
        answers = {_annotation_labels(ground_truth[0])}
        submitted = ground_truth
    (topics, speakers), = answers
    if len(speakers) != 1:
        return None, [f"{where}: the annotation has {len(speakers)} speakers {list(speakers)}; choose exactly one "
                      "in Label Studio"], "labelled"
    record = {"article": data["article"], "index": data["index"], "text": data["text"],
              "context": data.get("context", ""), "topics": [t for t in scheme.topics if t in topics],
              "speaker": speakers[0]}
    record.update({key: data[key] for key in METADATA_FIELDS if data.get(key)})
    marked = sources_from_result(submitted[0].get("result") or [])
    if marked is not None:  # the sources and quote kind (GUIDELINES §9), checked by validate_record below
        record["sources"], record["quote"] = marked
    problems = validate_record({**record, "topics": list(topics)}, where, scheme)
    return (None, problems, "labelled") if problems else (record, None, "labelled")


def import_export(export_file: str | Path, annotations_dir: str | Path, name: str | None, scheme: LabelScheme,
                  overwrite: bool = False) -> ImportResult:
    """Read the export, write the labelled tasks' records, and report every task left out with a problem."""
    export_file, annotations_dir = Path(export_file), Path(annotations_dir)
    if not export_file.is_file():
        raise UserError(f"{export_file}: no such file; export the project from Label Studio as JSON")
    out = annotations_dir / f"{name or export_file.stem}.jsonl"
    if out.exists() and not overwrite:
        raise UserError(f"{out} already exists; choose another NAME=<stem>, or pass --force to replace it")
    try:
        tasks = json.loads(export_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError([f"{export_file}:1: not a JSON file ({e}); export the project as JSON, not JSON-MIN or CSV"]) \
            from None
    if not isinstance(tasks, list):
        raise DataError([f"{export_file}:1: expected a list of tasks; export the project as Label Studio JSON"])
    result = ImportResult(out, [])
    labelled = _labelled_elsewhere(annotations_dir, out) if annotations_dir.is_dir() else {}
    taken: dict[tuple[str, int], str] = {}
    for number, task in enumerate(tasks, start=1):
        task = task if isinstance(task, dict) else {}
        where = f"{export_file}: task {task.get('id', f'#{number}')}"
        record, problems, outcome = _record_from_task(task, where, scheme)
        if outcome == "skipped":
            result.skipped += 1
        elif outcome == "unlabelled":
            result.unlabelled += 1
        if problems:
            result.problems.extend(problems)
        if record is None:
            continue
        key = (record["article"], record["index"])
        if key in labelled or key in taken:
            result.problems.append(f"{where}: sentence {key[1]} of article {key[0]!r} is already labelled at "
                                   f"{labelled.get(key) or taken[key]}; keep one of the two")
            continue
        taken[key] = where
        result.records.append(record)
    result.records.sort(key=lambda r: (r["article"], r["index"]))
    if result.records:
        write_file_atomically(out, lambda path: path.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in result.records), encoding="utf-8"))
    return result
