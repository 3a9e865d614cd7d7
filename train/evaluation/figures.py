"""The report's matplotlib figures, returned as PNG bytes.

Every figure keeps a fixed size per system (a panel, or a column of a heatmap),
so it grows with the number of systems instead of shrinking its labels: ten
systems give a grid of ten readable panels, not one image squeezed to the page.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from train.evaluation.metrics import Scores
    from train.evaluation.scoring import LabelledData
    from train.evaluation.sections import System

GRID_COLUMNS = 4


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _short(name: str, width: int = 34) -> str:
    return name if len(name) <= width else name[:width - 1] + "…"


def _panels(count: int, width: float, height: float) -> tuple[Figure, list]:
    columns = min(count, GRID_COLUMNS)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(width * columns, height * rows), layout="constrained")
    axes = list(np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel())
    for ax in axes[count:]:
        ax.set_axis_off()
    return figure, axes[:count]


def _score_heatmap(ax, values: np.ndarray, rows: list[str], columns: list[str]) -> None:
    ax.imshow(values, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize="small")
    ax.set_xticks(range(len(columns)), [_short(c) for c in columns], rotation=35, ha="right", fontsize="small")
    ax.set_yticks(range(len(rows)), rows, fontsize="small")
    ax.xaxis.tick_top()
    ax.tick_params(axis="x", labeltop=True, labelbottom=False)
    for label in ax.get_xticklabels():
        label.set_ha("left")


def per_label_figure(systems: list[System], scores: dict[str, Scores], data: LabelledData) -> bytes:
    """F1 per label (rows) and system (columns), topics above speakers."""
    labels = [*(("topics", t) for t in data.scheme.topics), *(("speaker", s) for s in data.scheme.speakers)]
    values = np.array([[getattr(scores[s.name], head).per_label[label].f1 for s in systems] for head, label in labels])
    figure = Figure(figsize=(3 + 0.9 * len(systems), 2.5 + 0.3 * len(labels)), layout="constrained")
    _score_heatmap(figure.subplots(), values, [f"{head}: {label}" for head, label in labels],
                   [s.label for s in systems])
    return _png(figure)


def confusion_figure(systems: list[System], scores: dict[str, Scores], data: LabelledData) -> bytes:
    speakers = data.scheme.speakers
    figure, axes = _panels(len(systems), 3.6, 3.7)
    for index, (ax, system) in enumerate(zip(axes, systems)):
        matrix = np.asarray(scores[system.name].speaker.confusion_matrix)
        support = matrix.sum(axis=1, keepdims=True)
        ax.imshow(np.divide(matrix, support, out=np.zeros(matrix.shape), where=support > 0), cmap="Blues",
                  vmin=0, vmax=1)
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize="small",
                        color="white" if count > support[i, 0] / 2 else "black")
        ax.set_xticks(range(len(speakers)), speakers, rotation=60, ha="right", fontsize="small")
        ax.set_yticks(range(len(speakers)), speakers if index % GRID_COLUMNS == 0 else [], fontsize="small")
        ax.set_xlabel("predicted", fontsize="small")
        if index % GRID_COLUMNS == 0:
            ax.set_ylabel("gold", fontsize="small")
        ax.set_title(_short(system.label, 40), fontsize="small")
    return _png(figure)


def _reliability_curve(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10):
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    occupied = [b for b in range(n_bins) if (bins == b).any()]
    return [confidence[bins == b].mean() for b in occupied], [correct[bins == b].mean() for b in occupied]


def reliability_figure(systems: list[System], data: LabelledData) -> bytes:
    """One panel per system: speaker accuracy vs confidence, and topic positive rate vs probability."""
    figure, axes = _panels(len(systems), 3.3, 3.3)
    for index, (ax, system) in enumerate(zip(axes, systems)):
        p = system.predictions
        ax.plot(*_reliability_curve(p.probabilities.speaker_confidence,
                                    (p.labels.speaker == data.gold.speaker).astype(float)),
                marker="o", label="speaker: accuracy")
        ax.plot(*_reliability_curve(p.probabilities.topics.ravel(), data.gold.topics.ravel().astype(float)),
                marker="s", label="topics: share positive")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
        ax.set(xlim=(0, 1), ylim=(0, 1))
        ax.set_title(_short(system.label, 40), fontsize="small")
        ax.set_xlabel("predicted probability", fontsize="small")
        if index == 0:
            ax.set_ylabel("observed", fontsize="small")
            ax.legend(fontsize="x-small", loc="upper left", frameon=False)
    return _png(figure)


def breakdown_figure(title: str, groups: list[str], values: dict[str, list[float]]) -> bytes:
    """Combined score per group (rows) and system (columns)."""
    names = list(values)
    figure = Figure(figsize=(3 + 0.9 * len(names), 2.5 + 0.3 * len(groups)), layout="constrained")
    ax = figure.subplots()
    _score_heatmap(ax, np.array([values[name] for name in names]).T, [_short(g, 40) for g in groups], names)
    ax.set_title(title, fontsize="medium")
    return _png(figure)
