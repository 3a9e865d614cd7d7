"""`make report`: compare checkpoints and the TF-IDF baseline on the same data.

    python -m train.evaluation.report [models/a models/b ...] [--data file.jsonl] [--name NAME]

Writes reports/<name>/index.html (self-contained: plots are embedded PNGs, no
external scripts or styles) and report.md with the same tables and the plots as
PNG files beside it. The report is built in a hidden staging directory and
renamed into place, so a failed run leaves no partial report.
"""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from train.atomic import write_directory_atomically
from train.errors import UserError
from train.evaluation.baseline import THRESHOLD, train_baseline
from train.evaluation.figures import breakdown_figure, confusion_figure, per_label_figure, reliability_figure
from train.evaluation.metrics import HEADLINE_METRICS, score_predictions
from train.evaluation.scoring import (
    LabelledData,
    Predictions,
    check_scheme,
    load_data,
    predict,
    sentence_records,
    split_data,
)
from train.evaluation.stats import (
    N_RESAMPLES,
    bootstrap_interval,
    headline_statistics,
    paired_bootstrap,
    resample_weights,
)
from train.modeling.checkpoint import LATEST, Checkpoint, CheckpointError
from train.modeling.navec import MODEL_TYPE as NAVEC_MODEL_TYPE

HEADLINE = {key: label[0].upper() + label[1:] for key, (label, _) in HEADLINE_METRICS.items()}
BASELINE_NAME = "baseline: TF-IDF + logistic regression"
MAX_LISTED_SENTENCES = 150
SIGNIFICANCE = 0.05
WRONG_CELL = ' class="wrong"'

# Runs in the browser: records script errors and broken images on <body>, so a
# headless browser's DOM dump shows whether the page rendered.
SELF_CHECK = """<script>
window.reportErrors = [];
window.addEventListener("error", function (e) {
  if (e instanceof ErrorEvent) { window.reportErrors.push(e.message); }  /* images are counted below */
}, true);
window.addEventListener("load", function () {
  var broken = Array.prototype.filter.call(document.images, function (img) {
    return !(img.complete && img.naturalWidth > 0); }).length;
  document.body.setAttribute("data-images", String(document.images.length));
  document.body.setAttribute("data-broken-images", String(broken));
  document.body.setAttribute("data-script-errors", String(window.reportErrors.length));
});
</script>"""

STYLE = """<style>
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.wrong { background: #fde2e2; }
img { max-width: 100%; display: block; margin: 1em 0; }
.note { color: #555; }
</style>"""


class ReportError(UserError):
    """Inputs a report cannot be built from; the message names the path."""


@dataclass
class System:
    name: str
    description: str
    predictions: Predictions
    parameters: int
    size_mb: float
    cross_validation: dict | None = None


@dataclass
class Section:
    anchor: str
    title: str
    html: str
    markdown: str


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


def _describe(checkpoint: Checkpoint) -> str:
    context = "with context" if checkpoint.use_context else "no context"
    if checkpoint.model_config.get("model_type") == NAVEC_MODEL_TYPE:
        return f"{checkpoint.encoder} + BiGRU {checkpoint.model_config.get('hidden_size', '?')}, {context}"
    layers = checkpoint.model_config.get("num_hidden_layers", "?")
    return f"{Path(checkpoint.encoder).name}, {layers} layers, {context}"


def _unique_names(paths: list[Path]) -> list[str]:
    names = [p.name for p in paths]
    return [str(p) if names.count(p.name) > 1 else p.name for p in paths]


def checkpoint_systems(checkpoints: list[Checkpoint], data: LabelledData) -> list[System]:
    systems = []
    for name, checkpoint in zip(_unique_names([c.path for c in checkpoints]), checkpoints):
        predictions, size = predict(checkpoint, data)
        systems.append(System(name, _describe(checkpoint), predictions, size["parameters"], size["size_mb"],
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
    baseline = train_baseline(train.texts, train.topic_gold, train.speaker_gold, len(train.scheme.speakers))
    start = time.perf_counter()
    topic_probs, speaker_probs = baseline.predict_probabilities(data.texts)
    elapsed = time.perf_counter() - start
    predictions = Predictions(topic_probs, speaker_probs, [THRESHOLD] * len(data.scheme.topics),
                              len(data) / elapsed if elapsed > 0 else float("inf"))
    return System(BASELINE_NAME, f"trained on {len(train)} sentences of {train.source}", predictions,
                  baseline.parameters, baseline.size_mb)


# ---------------------------------------------------------------- tables

def _html_table(header: list[str], rows: list[list[str]], wrong: list[list[bool]] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for r, row in enumerate(rows):
        cells = "".join(f"<td{WRONG_CELL if wrong and wrong[r][c] else ''}>{html.escape(cell)}</td>"
                        for c, cell in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def clean(cell: str) -> str:
        return cell.replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(map(clean, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(clean, row)) + " |" for row in rows]
    return "\n".join(lines)


def _table_section(anchor: str, title: str, intro: str, header: list[str], rows: list[list[str]],
                   wrong: list[list[bool]] | None = None) -> Section:
    return Section(anchor, title, f"<p class=\"note\">{html.escape(intro)}</p>" + _html_table(header, rows, wrong),
                   f"{intro}\n\n{_md_table(header, rows)}")


# ---------------------------------------------------------------- sections

def _fmt(value: float) -> str:
    return f"{value:.3f}"


def _speed(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def headline_section(systems: list[System], intervals: dict[str, dict], best: str, n_resamples: int) -> Section:
    header = ["System", "Description", *[f"{label} [95% CI]" for label in HEADLINE.values()], "Parameters",
              "Size (MB)", "CPU sentences/s"]
    rows = [[s.name + (" (best)" if s.name == best else ""), s.description,
             *[f"{_fmt(i.point)} [{_fmt(i.low)}, {_fmt(i.high)}]" for i in intervals[s.name].values()],
             f"{s.parameters:,}", f"{s.size_mb:.1f}", _speed(s.predictions.sentences_per_second)]
            for s in systems]
    intro = (f"Point estimates on every sentence, with 95% percentile bootstrap intervals from {n_resamples} "
             "resamples of the sentences. Combined = mean of topic and speaker macro-F1 (higher is better); "
             "ECE: expected calibration error of the speaker head (lower is better). Speed: inference on this "
             "machine's CPU after a warm-up batch.")
    return _table_section("headline", "Headline metrics", intro, header, rows)


def paired_section(systems: list[System], tests: dict[str, dict], best: str) -> Section:
    header = ["System", *[f"Δ {label} [95% CI], p" for label in HEADLINE.values()]]
    rows = []
    for system in systems:
        if system.name == best:
            continue
        cells = []
        for test in tests[system.name].values():
            marker = " *" if test.p_value < SIGNIFICANCE else ""
            cells.append(f"{test.difference:+.3f} [{test.low:+.3f}, {test.high:+.3f}], p={test.p_value:.3f}{marker}")
        rows.append([system.name, *cells])
    intro = (f"Each system minus the best one by combined score ({best}), scored on the same bootstrap resamples "
             "of the sentences (for ECE a negative difference is better). p: two-sided paired bootstrap, twice "
             "the share of resamples in which the difference is zero or has the opposite sign to the observed one; "
             f"* marks p < {SIGNIFICANCE}: the difference is unlikely to be an accident of which sentences were "
             "sampled. A large p says this much data cannot tell the two apart.")
    if not rows:
        return Section("paired", "Paired bootstrap tests", "<p>Only one system: nothing to compare.</p>",
                       "Only one system: nothing to compare.")
    return _table_section("paired", "Paired bootstrap tests against the best", intro, header, rows)


def _is_mean_sd(value) -> bool:
    return isinstance(value, dict) and "mean" in value


def cv_rows(name: str, cv: dict) -> list[tuple[str, dict]]:
    """(row label, {metric: {mean, sd}}) for a run's cross-validation summary.

    The summary is either flat ({metric: {mean, sd}}) or per setting
    ({"context": {metric: ...}, "no_context": ...}), with an optional paired context effect.
    """
    summary = cv["summary"]
    if all(_is_mean_sd(v) for v in summary.values()):
        rows = [(name, summary)]
    else:
        rows = [(f"{name} ({setting})", metrics) for setting, metrics in summary.items() if isinstance(metrics, dict)]
    effect = cv.get("context_effect")
    if isinstance(effect, dict):
        rows.append((f"{name}: context minus no context (paired, {effect.get('n_pairs', '?')} fold x seed pairs)",
                     {k: v for k, v in effect.items() if _is_mean_sd(v)}))
    return rows


def cv_section(systems: list[System]) -> Section:
    rows = [row for s in systems if s.cross_validation for row in cv_rows(s.name, s.cross_validation)]
    if not rows:
        text = "None of these runs has cross-validation results (run `make cv` to get them)."
        return Section("cv", "Cross-validation", f"<p class=\"note\">{html.escape(text)}</p>", text)
    metrics = list(dict.fromkeys(m for _, values in rows for m in values))

    def cell(values: dict, metric: str) -> str:
        value = values.get(metric)
        return f"{value['mean']:.3f} ± {value.get('sd', float('nan')):.3f}" if _is_mean_sd(value) else "-"
    table = [[label, *[cell(values, m) for m in metrics]] for label, values in rows]
    return _table_section("cv", "Cross-validation", "Mean ± standard deviation over folds and seeds, "
                          "from each run's metrics.json (make cv).", ["Run", *metrics], table)


def _group_scores(systems: list[System], data: LabelledData, groups: list[str]) -> dict[str, dict[str, dict]]:
    """score_predictions on the sentences of each group (article or outlet), per system."""
    result: dict[str, dict[str, dict]] = {}
    keys = np.asarray(groups)
    for system in systems:
        p = system.predictions
        result[system.name] = {}
        for group in dict.fromkeys(groups):
            mask = keys == group
            result[system.name][group] = score_predictions(
                p.topic_probs[mask], data.topic_gold[mask], p.speaker_probs[mask], data.speaker_gold[mask],
                list(data.scheme.topics), list(data.scheme.speakers), p.thresholds)
    return result


def breakdown_section(systems: list[System], data: LabelledData, figures: dict[str, bytes]) -> Section:
    parts_html, parts_md = [], []
    for key, label, groups in (("article", "Per article", data.articles), ("outlet", "Per outlet", data.outlets)):
        scores = _group_scores(systems, data, groups)
        names = list(dict.fromkeys(groups))
        figure_name = f"per_{key}.png"
        figures[figure_name] = breakdown_figure(f"{label}: combined score", names,
                                                {s.name: [scores[s.name][g]["combined"] for g in names]
                                                 for s in systems})
        header = [key.capitalize(), "Sentences", *[f"{s.name}: combined / topic micro-F1 / speaker acc."
                                                   for s in systems]]
        rows = [[g, str(groups.count(g)), *[
            f"{scores[s.name][g]['combined']:.3f} / {scores[s.name][g]['topics']['micro_f1']:.3f} / "
            f"{scores[s.name][g]['speaker']['accuracy']:.3f}" for s in systems]] for g in names]
        parts_html.append(f"<h3>{label}</h3>{_img(figures[figure_name], label)}{_html_table(header, rows)}")
        parts_md.append(f"### {label}\n\n![{label}](figures/{figure_name})\n\n{_md_table(header, rows)}")
    return Section("breakdown", "Per-article and per-outlet breakdown", "".join(parts_html), "\n\n".join(parts_md))


def _label_text(topics: list[str], speaker: str) -> str:
    return f"{', '.join(topics) or '(no topic)'}; {speaker}"


def sentences_section(systems: list[System], data: LabelledData) -> Section:
    records = {s.name: sentence_records(data, s.predictions) for s in systems}
    gold = [_label_text(r["gold_topics"], r["gold_speaker"]) for r in records[systems[0].name]]
    predicted = {name: [_label_text(r["topics"], r["speaker"]) for r in rs] for name, rs in records.items()}
    listed = []
    for i in range(len(data)):
        answers = [predicted[s.name][i] for s in systems]
        wrong = [a != gold[i] for a in answers]
        if any(wrong) or len(set(answers)) > 1:
            listed.append((-sum(wrong), i, wrong))
    listed.sort()
    header = ["Sentence", "Text", "Gold", *[s.name for s in systems]]
    rows = [[data.ids[i], data.texts[i], gold[i], *[predicted[s.name][i] for s in systems]]
            for _, i, _ in listed[:MAX_LISTED_SENTENCES]]
    marks = [[False, False, False, *wrong] for _, _, wrong in listed[:MAX_LISTED_SENTENCES]]
    shown = f"the first {MAX_LISTED_SENTENCES} of " if len(listed) > MAX_LISTED_SENTENCES else ""
    intro = (f"Sentences at least one system gets wrong (topics or speaker) or on which the systems disagree: "
             f"{shown}{len(listed)} of {len(data)}, most-missed first. Labels read 'topics; speaker'; "
             "wrong predictions are highlighted in the HTML page.")
    return _table_section("sentences", "Errors and disagreements", intro, header, rows, marks)


def _img(png: bytes, alt: str) -> str:
    return f"<img alt=\"{html.escape(alt)}\" src=\"data:image/png;base64,{base64.b64encode(png).decode('ascii')}\">"


def figure_section(anchor: str, title: str, intro: str, figure_name: str, png: bytes) -> Section:
    return Section(anchor, title, f"<p class=\"note\">{html.escape(intro)}</p>{_img(png, title)}",
                   f"{intro}\n\n![{title}](figures/{figure_name})")


# ---------------------------------------------------------------- assembly

def render_html(title: str, summary: str, sections: list[Section]) -> str:
    contents = "".join(f"<li><a href=\"#{s.anchor}\">{html.escape(s.title)}</a></li>" for s in sections)
    body = "".join(f"<section id=\"{s.anchor}\"><h2>{html.escape(s.title)}</h2>{s.html}</section>" for s in sections)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title>{SELF_CHECK}{STYLE}</head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p><ul>{contents}</ul>{body}</body></html>\n")


def render_markdown(title: str, summary: str, sections: list[Section]) -> str:
    return f"# {title}\n\n{summary}\n\n" + "".join(f"## {s.title}\n\n{s.markdown}\n\n" for s in sections)


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
    systems.append(baseline_system(split_data(first.train_config.data, "train", first.data_fingerprint, first.path),
                                   data))

    scores = {s.name: score_predictions(s.predictions.topic_probs, data.topic_gold, s.predictions.speaker_probs,
                                        data.speaker_gold, list(data.scheme.topics), list(data.scheme.speakers),
                                        s.predictions.thresholds) for s in systems}
    weights = resample_weights(len(data), n_resamples)
    statistics = {s.name: headline_statistics(data.topic_gold, s.predictions.topic_pred, data.speaker_gold,
                                              s.predictions.speaker_probs) for s in systems}
    intervals = {name: {m: bootstrap_interval(stat, weights) for m, stat in stats.items()}
                 for name, stats in statistics.items()}
    best = max(systems, key=lambda s: intervals[s.name]["combined"].point).name
    tests = {s.name: {m: paired_bootstrap(statistics[s.name][m], statistics[best][m], weights) for m in HEADLINE}
             for s in systems if s.name != best}

    figures = {"per_label_f1.png": per_label_figure(systems, scores, data),
               "speaker_confusion.png": confusion_figure(systems, scores, data),
               "reliability.png": reliability_figure(systems, data)}
    sections = [
        headline_section(systems, intervals, best, n_resamples),
        paired_section(systems, tests, best),
        cv_section(systems),
        figure_section("per-label", "Per-label F1", "F1 of every topic and speaker label on this data; a label "
                       "absent from both gold and predictions shows 0.", "per_label_f1.png",
                       figures["per_label_f1.png"]),
        figure_section("confusion", "Speaker confusion matrices", "Rows: gold speaker; columns: predicted.",
                       "speaker_confusion.png", figures["speaker_confusion.png"]),
        figure_section("reliability", "Reliability diagrams", "Points on the diagonal are well calibrated; "
                       "below it, the model is over-confident. Bins of width 0.1, empty bins omitted.",
                       "reliability.png", figures["reliability.png"]),
        breakdown_section(systems, data, figures),
        sentences_section(systems, data),
    ]
    name = name or datetime.now().strftime("%Y%m%d-%H%M%S")
    title = f"Checkpoint comparison: {name}"
    summary = (f"{len(data)} sentences of {data.source}; {len(systems) - 1} checkpoint(s) and the baseline; "
               f"generated {datetime.now():%Y-%m-%d %H:%M}.")

    def write(staging: Path) -> None:
        (staging / "figures").mkdir()
        for figure_name, png in figures.items():
            (staging / "figures" / figure_name).write_bytes(png)
        (staging / "index.html").write_text(render_html(title, summary, sections), encoding="utf-8")
        (staging / "report.md").write_text(render_markdown(title, summary, sections), encoding="utf-8")

    target = Path(out_dir) / name
    write_directory_atomically(target, write)
    return target
