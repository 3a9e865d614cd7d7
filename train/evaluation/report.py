"""`make report`: compare checkpoints and the TF-IDF baseline on the same data.

    python -m train.evaluation.report [models/a models/b ...] [--data file.jsonl] [--name NAME]

Writes reports/<name>/index.html (from templates/report.html.j2; self-contained:
plots are embedded PNGs, no external scripts or styles) and report.md with the same tables and the plots as
PNG files beside it. The report is built in a hidden staging directory and
renamed into place, so a failed run leaves no partial report.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from train.atomic import write_directory_atomically
from train.errors import UserError
from train.evaluation.figures import breakdown_figure, confusion_figure, per_label_figure, reliability_figure
from train.evaluation.scoring import LabelledData, Predictions, check_scheme, load_data, predict, score, split_data
from train.evaluation.sections import (
    HEADLINE,
    Figure,
    Section,
    System,
    breakdown_section,
    checkpoint_settings,
    cv_section,
    describe,
    differing_settings,
    headline_section,
    paired_section,
    sentences_section,
    settings_section,
)
from train.evaluation.source_section import sources_section
from train.evaluation.stats import (
    N_RESAMPLES,
    bootstrap_interval,
    headline_statistics,
    paired_bootstrap,
    resample_weights,
)
from train.modeling.baseline import THRESHOLD, train_baseline
from train.modeling.checkpoint import LATEST, Checkpoint, CheckpointError
from train.pages import markdown_table, page_environment

BASELINE_NAME = "baseline: TF-IDF + logistic regression"


class ReportError(UserError):
    """Inputs a report cannot be built from; the message names the path."""


def discover_checkpoints(models_dir: str | Path = "models") -> list[Checkpoint]:
    """Every complete checkpoint directory in models_dir (not the `latest` link, not hidden ones)."""
    models_dir = Path(models_dir)
    found = []
    for path in sorted(models_dir.iterdir()) if models_dir.is_dir() else []:
        if path.name == LATEST or path.name.startswith(".") or not path.is_dir():
            continue
        try:
            found.append(Checkpoint.open(path))
        except CheckpointError:
            continue
    if not found:
        raise ReportError(f"{models_dir}: no complete checkpoint to report on; train one with `make train` "
                          "or pass MODELS=\"models/a models/b\"")
    return found


def _unique_names(paths: list[Path]) -> list[str]:
    names = [p.name for p in paths]
    return [str(p) if names.count(p.name) > 1 else p.name for p in paths]


def checkpoint_systems(checkpoints: list[Checkpoint], data: LabelledData) -> list[System]:
    systems = []
    for name, checkpoint in zip(_unique_names([c.path for c in checkpoints]), checkpoints):
        predictions, size = predict(checkpoint, data)
        systems.append(System(name, predictions, size["parameters"], size["size_mb"],
                              checkpoint_settings(checkpoint), checkpoint.random_weights,
                              checkpoint.cross_validation))
    return systems


def _same_training_data(checkpoints: list[Checkpoint]) -> None:
    """On the test split, every run must have been trained on the same data, or one is scored on its training set."""
    fingerprints = {c.data_fingerprint for c in checkpoints}
    if len(fingerprints) > 1:
        listing = ", ".join(f"{c.name}: {c.data_fingerprint}" for c in checkpoints)
        raise ReportError(f"the runs were trained on different data ({listing}); no test split is held out from "
                          "all of them: compare them on a labelled file (ARGS=\"--data file.jsonl\")")


def baseline_system(train: LabelledData, data: LabelledData) -> System:
    if train.scheme != data.scheme:
        raise ReportError(f"{data.source}: its labels differ from the training split's ({train.source}); "
                          "the baseline cannot be trained for it")
    baseline = train_baseline(train.texts, train.gold, len(train.scheme.speakers))
    start = time.perf_counter()
    probabilities = baseline.predict_probabilities(data.texts)
    elapsed = time.perf_counter() - start
    predictions = Predictions(probabilities, [THRESHOLD] * len(data.scheme.topics),
                              len(data) / elapsed if elapsed > 0 else float("inf"))
    return System(BASELINE_NAME, predictions, baseline.parameters, baseline.size_mb)


def render(title: str, summary: str, sections: list[Section]) -> tuple[str, str]:
    """(index.html, report.md) from the same sections."""
    environment = page_environment("train.evaluation")
    environment.filters["markdown_table"] = lambda table: markdown_table(table.header, table.rows)
    context = {"title": title, "summary": summary, "sections": sections}
    return (environment.get_template("report.html.j2").render(context),
            environment.get_template("report.md.j2").render(context))


def build_report(model_paths: list[str | Path], name: str | None = None, out_dir: str | Path = "reports",
                 data_path: str | Path | None = None, n_resamples: int = N_RESAMPLES,
                 models_dir: str | Path = "models") -> Path:
    """Score every checkpoint and the baseline on the same data; return the report directory.

    The baseline trains on the first run's training split, rebuilt from that run's own data config.
    """
    checkpoints = [Checkpoint.open(p) for p in model_paths] if model_paths else discover_checkpoints(models_dir)
    if data_path is None:
        _same_training_data(checkpoints)
    data = load_data(checkpoints[0], data_path)
    for checkpoint in checkpoints[1:]:
        check_scheme(checkpoint, data)
    systems = checkpoint_systems(checkpoints, data)
    first = checkpoints[0]
    train = split_data(first.train_config.data, "train", first.data_fingerprint, first.path)
    systems.append(baseline_system(train, data))
    shown = differing_settings(systems)
    descriptions = {s.name: describe(s, shown) for s in systems}
    descriptions[BASELINE_NAME] = f"trained on {len(train)} sentences of {train.source}"

    scores = {s.name: score(data.scheme, data.gold, s.predictions) for s in systems}
    weights = resample_weights(len(data), n_resamples)
    statistics = {s.name: headline_statistics(data.gold, s.predictions.labels, s.predictions.probabilities)
                  for s in systems}
    intervals = {name: {m: bootstrap_interval(stat, weights) for m, stat in stats.items()}
                 for name, stats in statistics.items()}
    best = max(systems, key=lambda s: intervals[s.name]["combined"].point).name
    tests = {s.name: {m: paired_bootstrap(statistics[s.name][m], statistics[best][m], weights) for m in HEADLINE}
             for s in systems if s.name != best}

    sections = [
        settings_section(systems),
        headline_section(systems, intervals, best, n_resamples, descriptions),
        paired_section(systems, tests, best),
        cv_section(systems),
        Section("per-label", "Per-label F1", "F1 of every topic and speaker label on this data, one column per "
                "system; a label absent from both gold and predictions shows 0.",
                [Figure("per_label_f1.png", per_label_figure(systems, scores, data), "Per-label F1")]),
        Section("confusion", "Speaker confusion matrices", "One panel per system. Rows: gold speaker; columns: "
                "predicted; each row is shaded by its share of that gold speaker's sentences.",
                [Figure("speaker_confusion.png", confusion_figure(systems, scores, data), "Speaker confusion")]),
        Section("reliability", "Reliability diagrams", "One panel per system. Points on the diagonal are well "
                "calibrated; below it, the model is over-confident. Bins of width 0.1, empty bins omitted.",
                [Figure("reliability.png", reliability_figure(systems, data), "Reliability")]),
        breakdown_section(systems, data, breakdown_figure),
        *sources_section(systems, data),
        sentences_section(systems, data),
    ]
    name = name or datetime.now().strftime("%Y%m%d-%H%M%S")
    title = f"Checkpoint comparison: {name}"
    summary = (f"{len(data)} sentences of {data.source}; {len(systems) - 1} checkpoint(s) and the baseline; "
               f"generated {datetime.now():%Y-%m-%d %H:%M}.")

    def write(staging: Path) -> None:
        (staging / "figures").mkdir()
        for figure in (block for section in sections for block in section.blocks if isinstance(block, Figure)):
            (staging / "figures" / figure.file).write_bytes(figure.png)
        page, markdown = render(title, summary, sections)
        (staging / "index.html").write_text(page, encoding="utf-8")
        (staging / "report.md").write_text(markdown, encoding="utf-8")

    target = Path(out_dir) / name
    write_directory_atomically(target, write)
    return target
