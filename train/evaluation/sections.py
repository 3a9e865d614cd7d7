"""The evaluation report's sections as data (tables and figures); the templates turn them into HTML and Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from train.evaluation.metrics import HEADLINE_METRICS, Scores
from train.evaluation.scoring import LabelledData, Predictions, score, sentence_records
from train.modeling.checkpoint import Checkpoint
from train.modeling.encoders import encoder_spec

HEADLINE = {key: label[0].upper() + label[1:] for key, label in HEADLINE_METRICS.items()}
MAX_LISTED_SENTENCES = 150
SIGNIFICANCE = 0.05
RANDOM_WEIGHTS = "RANDOM WEIGHTS"
CV_SETTINGS = {"context": "with context", "no_context": "without context"}


@dataclass
class System:
    name: str
    predictions: Predictions
    parameters: int
    size_mb: float
    settings: dict[str, str] = field(default_factory=dict)
    random_weights: bool = False
    cross_validation: dict | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({RANDOM_WEIGHTS})" if self.random_weights else self.name


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    wrong: list[list[bool]] | None = None


@dataclass
class Figure:
    file: str  # figures/<file> beside report.md
    png: bytes
    alt: str


@dataclass
class Section:
    anchor: str
    title: str
    intro: str
    blocks: list[Table | Figure | str] = field(default_factory=list)  # a str is a sub-heading


def checkpoint_settings(checkpoint: Checkpoint) -> dict[str, str]:
    """The settings that tell runs apart, as the report shows them."""
    config = checkpoint.train_config
    spec = encoder_spec(config.model.encoder)
    return {"encoder": spec.short_name(config.model),
            "encoder choice": checkpoint.encoder_record.get("reason", "as configured (not recorded before format 2)"),
            "recipe": config.train.recipe,
            "pooling": checkpoint.model_config.get("pooling", "-"),
            "TF-IDF weight": f"{checkpoint.model_config.get('lexical_weight', 0.0):g}",
            "layers": spec.layers(checkpoint.model_config),
            "epochs": str(config.train.epochs), "learning rate": f"{config.train.learning_rate:g}",
            "seed": str(config.train.seed),
            "context": "yes" if checkpoint.use_context else "no",
            "data": (checkpoint.data_fingerprint or "?")[:12]}


ALWAYS_SHOWN = ("encoder", "encoder choice")  # which encoder a run used and why, even when all runs agree


def differing_settings(systems: list[System]) -> list[str]:
    """Setting names whose values differ between the checkpoints (all of them for a single run), and the encoder."""
    runs = [s.settings for s in systems if s.settings]
    names = list(dict.fromkeys(name for settings in runs for name in settings))
    if len(runs) <= 1:
        return names
    return [n for n in names if n in ALWAYS_SHOWN or len({settings.get(n) for settings in runs}) > 1]


def describe(system: System, shown: list[str]) -> str:
    text = ", ".join(f"{name} {system.settings[name]}" for name in shown if name in system.settings)
    return f"{RANDOM_WEIGHTS}; {text}" if system.random_weights else text


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def format_p(p_value: float) -> str:
    return "p<0.001" if p_value < 0.001 else f"p={p_value:.3f}"


def _speed(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def settings_section(systems: list[System]) -> Section:
    shown = differing_settings(systems)
    runs = [s for s in systems if s.settings]
    rows = [[s.label, *[s.settings.get(name, "") for name in shown]] for s in runs]
    flagged = [s.name for s in runs if s.random_weights]
    intro = ("The settings that differ between the runs (those all runs share are left out, except which "
             "encoder each used and why). "
             + (f"{', '.join(flagged)} ran with random encoder weights (model.random_init): a pipeline test, "
                "whose scores mean nothing." if flagged else ""))
    return Section("runs", "Runs compared", intro, [Table(["Run", *shown], rows)])


def headline_section(systems: list[System], intervals: dict[str, dict], best: str, n_resamples: int,
                     descriptions: dict[str, str]) -> Section:
    header = ["System", "Settings", *[f"{label} [95% CI]" for label in HEADLINE.values()], "Parameters",
              "Size (MB)", "CPU sentences/s"]
    rows = [[s.label + (" (best)" if s.name == best else ""), descriptions[s.name],
             *[f"{_fmt(i.point)} [{_fmt(i.low)}, {_fmt(i.high)}]" for i in intervals[s.name].values()],
             f"{s.parameters:,}", f"{s.size_mb:.1f}", _speed(s.predictions.sentences_per_second)]
            for s in systems]
    intro = (f"Point estimates on every sentence, with 95% percentile bootstrap intervals from {n_resamples} "
             "resamples of the sentences. Combined = mean of topic and speaker macro-F1 (higher is better); "
             "ECE: expected calibration error of the speaker head (lower is better). Speed: inference on this "
             "machine's CPU after a warm-up batch.")
    return Section("headline", "Headline metrics", intro, [Table(header, rows)])


def paired_section(systems: list[System], tests: dict[str, dict], best: str) -> Section:
    if len(systems) < 2:
        return Section("paired", "Paired bootstrap tests", "Only one system: nothing to compare.")
    header = ["System", *[f"Δ {label} [95% CI], p" for label in HEADLINE.values()]]
    rows = []
    for system in systems:
        if system.name == best:
            continue
        cells = [f"{t.difference:+.3f} [{t.low:+.3f}, {t.high:+.3f}], {format_p(t.p_value)}"
                 f"{' *' if t.p_value < SIGNIFICANCE else ''}" for t in tests[system.name].values()]
        rows.append([system.label, *cells])
    intro = (f"Each system minus the best one by combined score ({best}), scored on the same bootstrap resamples "
             "of the sentences (for ECE a negative difference is better). p: two-sided paired bootstrap, twice "
             "the share of resamples in which the difference is zero or has the opposite sign to the observed one; "
             f"* marks p < {SIGNIFICANCE}: the difference is unlikely to be an accident of which sentences were "
             "sampled. A large p says this much data cannot tell the two apart.")
    return Section("paired", "Paired bootstrap tests against the best", intro, [Table(header, rows)])


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
        rows = [(f"{name} ({CV_SETTINGS.get(setting, setting)})", metrics)
                for setting, metrics in summary.items() if isinstance(metrics, dict)]
    effect = cv.get("context_effect")
    if isinstance(effect, dict):
        rows.append((f"{name}: with minus without context (paired over {effect.get('n_pairs', '?')} "
                     "fold × seed pairs)", {k: v for k, v in effect.items() if _is_mean_sd(v)}))
    return rows


def cv_section(systems: list[System]) -> Section:
    rows = [row for s in systems if s.cross_validation for row in cv_rows(s.name, s.cross_validation)]
    if not rows:
        return Section("cv", "Cross-validation",
                       "None of these runs has cross-validation results (run `make cv` to get them).")
    metrics = list(dict.fromkeys(m for _, values in rows for m in values))

    def cell(values: dict, metric: str) -> str:
        value = values.get(metric)
        return f"{value['mean']:.3f} ± {value.get('sd', float('nan')):.3f}" if _is_mean_sd(value) else "-"
    table = [[label, *[cell(values, m) for m in metrics]] for label, values in rows]
    return Section("cv", "Cross-validation", "Mean ± standard deviation over folds and seeds, from each run's "
                   "metrics.json (make cv).", [Table(["Run", *[HEADLINE.get(m, m) for m in metrics]], table)])


def group_scores(systems: list[System], data: LabelledData, groups: list[str]) -> dict[str, dict[str, Scores]]:
    """The scores of the sentences of each group (article or outlet), per system."""
    keys = np.asarray(groups)
    return {system.name: {group: score(data.scheme, data.gold.rows(keys == group),
                                       system.predictions.rows(keys == group))
                          for group in dict.fromkeys(groups)} for system in systems}


def breakdown_section(systems: list[System], data: LabelledData, figure) -> Section:
    """`figure(title, groups, {system: scores})` draws the per-group comparison."""
    blocks: list[Table | Figure | str] = []
    for key, label, groups in (("article", "Per article", data.articles), ("outlet", "Per outlet", data.outlets)):
        scores = group_scores(systems, data, groups)
        names = list(dict.fromkeys(groups))
        png = figure(f"{label}: combined score", names,
                     {s.name: [scores[s.name][g].combined for g in names] for s in systems})
        header = [key.capitalize(), "Sentences", *[f"{s.name}: combined / topic micro-F1 / speaker acc."
                                                   for s in systems]]
        rows = [[g, str(groups.count(g)), *[
            f"{scores[s.name][g].combined:.3f} / {scores[s.name][g].topics.micro_f1:.3f} / "
            f"{scores[s.name][g].speaker.accuracy:.3f}" for s in systems]] for g in names]
        blocks += [label, Figure(f"per_{key}.png", png, label), Table(header, rows)]
    return Section("breakdown", "Per-article and per-outlet breakdown", "Combined score of every system on the "
                   "sentences of each article and outlet.", blocks)


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
    return Section("sentences", "Errors and disagreements", intro, [Table(header, rows, marks)])
