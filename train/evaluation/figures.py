"""The report's matplotlib figures, returned as PNG bytes."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from train.evaluation.report import System
    from train.evaluation.scoring import LabelledData


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def _grouped_bars(ax, categories: list[str], values: dict[str, list[float]], xlabel: str) -> None:
    height = 0.8 / max(len(values), 1)
    positions = np.arange(len(categories))
    for k, (name, series) in enumerate(values.items()):
        ax.barh(positions + k * height, series, height=height, label=name)
    ax.set_yticks(positions + height * (len(values) - 1) / 2, categories)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)


def _legend_below(figure: Figure, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0), ncols=min(len(labels), 3),
                  fontsize="small", frameon=False)


def per_label_figure(systems: list[System], scores: dict[str, dict], data: LabelledData) -> bytes:
    figure = Figure(figsize=(11, 0.35 * (len(data.scheme.topics) + 2) * max(len(systems), 2) / 2 + 1.5),
                    layout="constrained")
    topic_ax, speaker_ax = figure.subplots(1, 2)
    for ax, head, labels in ((topic_ax, "topics", data.scheme.topics), (speaker_ax, "speaker", data.scheme.speakers)):
        values = {s.name: [scores[s.name][head]["per_label"][label]["f1"] for label in labels] for s in systems}
        _grouped_bars(ax, list(labels), values, "F1")
        ax.set_title(f"{head}: F1 per label")
    _legend_below(figure, topic_ax)
    return _png(figure)


def confusion_figure(systems: list[System], scores: dict[str, dict], data: LabelledData) -> bytes:
    speakers = data.scheme.speakers
    figure = Figure(figsize=(4.6 * len(systems), 4.4), layout="constrained")
    for ax, system in zip(np.atleast_1d(figure.subplots(1, len(systems))), systems):
        matrix = np.asarray(scores[system.name]["speaker"]["confusion_matrix"])
        ax.imshow(matrix, cmap="Blues")
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                ax.text(j, i, str(count), ha="center", va="center",
                        color="white" if count > matrix.max() / 2 else "black")
        ax.set_xticks(range(len(speakers)), speakers, rotation=60, ha="right")
        ax.set_yticks(range(len(speakers)), speakers)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(system.name if len(system.name) < 40 else system.name[:37] + "...", fontsize="small")
    return _png(figure)


def _reliability_curve(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10):
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    occupied = [b for b in range(n_bins) if (bins == b).any()]
    return ([confidence[bins == b].mean() for b in occupied], [correct[bins == b].mean() for b in occupied],
            [int((bins == b).sum()) for b in occupied])


def reliability_figure(systems: list[System], data: LabelledData) -> bytes:
    figure = Figure(figsize=(11, 4.6))
    speaker_ax, topic_ax = figure.subplots(1, 2)
    for system in systems:
        p = system.predictions
        speaker = _reliability_curve(p.speaker_probs.max(axis=1), (p.speaker_pred == data.speaker_gold).astype(float))
        topic = _reliability_curve(p.topic_probs.ravel(), data.topic_gold.ravel().astype(float))
        for ax, (x, y, counts) in ((speaker_ax, speaker), (topic_ax, topic)):
            ax.plot(x, y, marker="o", label=system.name)
    speaker_ax.set(title="speaker: accuracy vs confidence", xlabel="confidence (max probability)",
                   ylabel="accuracy")
    topic_ax.set(title="topics: positive rate vs probability", xlabel="predicted probability",
                 ylabel="share labelled with the topic")
    for ax in (speaker_ax, topic_ax):
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    _legend_below(figure, speaker_ax)
    return _png(figure)


def breakdown_figure(title: str, groups: list[str], values: dict[str, list[float]]) -> bytes:
    figure = Figure(figsize=(9, 0.45 * len(groups) * max(len(values), 2) / 2 + 1.5))
    ax = figure.subplots()
    _grouped_bars(ax, groups, values, "combined score (mean of topic and speaker macro-F1)")
    ax.set_title(title)
    _legend_below(figure, ax)
    return _png(figure)
