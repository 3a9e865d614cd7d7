"""The coverage page's matplotlib figures, returned as PNG bytes."""

from __future__ import annotations

import io
import math

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from train.coverage.tables import GroupShares

DPI = 80


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _colours(n: int) -> list:
    palette = colormaps["tab10" if n <= 10 else "tab20"]
    return [palette(i) for i in range(n)]


def stacked_shares_figure(groups: list[GroupShares], labels: tuple[str, ...], key: str, xlabel: str) -> bytes:
    """One horizontal bar per group, split into its labels' estimated shares."""
    figure = Figure(figsize=(10, 1.2 + 0.32 * len(groups)), layout="constrained")
    ax = figure.subplots()
    positions = np.arange(len(groups))
    left = np.zeros(len(groups))
    for label, colour, column in zip(labels, _colours(len(labels)), range(len(labels))):
        values = np.array([np.nan_to_num(g.estimate[key][column]) for g in groups]) * 100
        ax.barh(positions, values, left=left, color=colour, label=label, height=0.8)
        left += values
    ax.set_yticks(positions, [g.name for g in groups])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, max(100, float(left.max()) * 1.02))
    figure.legend(loc="outside lower center", ncols=min(len(labels), 7), frameon=False, fontsize="small")
    return _png(figure)


def _heatmap(ax, matrix: np.ndarray, topics: tuple[str, ...], speakers: tuple[str, ...], annotate: bool,
             tick_labels: bool) -> None:
    ax.imshow(np.nan_to_num(matrix), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    if annotate:
        for (i, j), value in np.ndenumerate(matrix):
            if not np.isnan(value) and value >= 0.005:
                ax.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize="x-small",
                        color="white" if value > 0.5 else "black")
    if tick_labels:
        ax.set_xticks(range(len(speakers)), speakers, rotation=45, ha="right", fontsize="small")
        ax.set_yticks(range(len(topics)), topics, fontsize="small")
    else:
        ax.set_xticks([])
        ax.set_yticks([])


def heatmap_figure(group: GroupShares, topics: tuple[str, ...], speakers: tuple[str, ...]) -> bytes:
    """Rows: topics; columns: speakers; cell: the share of the topic's sentences that report that speaker."""
    figure = Figure(figsize=(7.5, 5.5), layout="constrained")
    ax = figure.subplots()
    _heatmap(ax, group.estimate["pair"], topics, speakers, annotate=True, tick_labels=True)
    ax.set_xlabel("speaker")
    ax.set_ylabel("topic")
    return _png(figure)


def small_multiples_figure(groups: list[GroupShares], topics: tuple[str, ...], speakers: tuple[str, ...],
                           columns: int = 5) -> bytes:
    """The topic x speaker heatmap of each group, on one colour scale; labels on the first panel only."""
    rows = math.ceil(len(groups) / columns)
    figure = Figure(figsize=(2.6 * columns + 1.2, 2.5 * rows + 0.8), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for index, (ax, group) in enumerate(zip(axes, groups)):
        _heatmap(ax, group.estimate["pair"], topics, speakers, annotate=False, tick_labels=index == 0)
        ax.set_title(f"{group.name[:28]} ({group.sentences:,})", fontsize="small")
    for ax in axes[len(groups):]:
        ax.set_axis_off()
    return _png(figure)


def time_figure(periods: list[GroupShares], labels: tuple[str, ...], key: str, unit: str,
                columns: int = 4) -> bytes:
    """One panel per label: its estimated share per period, with the 95% interval shaded."""
    rows = math.ceil(len(labels) / columns)
    figure = Figure(figsize=(3.2 * columns, 2.4 * rows + 0.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False, sharey=True)).ravel()
    x = np.arange(len(periods))
    step = max(1, len(periods) // 6)
    for column, (ax, label, colour) in enumerate(zip(axes, labels, _colours(len(labels)))):
        values = np.array([p.estimate[key][column] for p in periods]) * 100
        low = np.array([p.low[key][column] for p in periods]) * 100
        high = np.array([p.high[key][column] for p in periods]) * 100
        ax.fill_between(x, low, high, color=colour, alpha=0.25, linewidth=0)
        ax.plot(x, values, color=colour, marker="o" if len(periods) < 20 else None, markersize=3)
        ax.set_title(label, fontsize="small")
        ax.set_xticks(x[::step], [p.name for p in periods][::step], rotation=45, ha="right", fontsize="x-small")
        ax.grid(alpha=0.3)
    for ax in axes[len(labels):]:
        ax.set_axis_off()
    axes[0].set_ylabel("% of sentences")
    figure.suptitle(f"per {unit}; shaded: 95% interval", fontsize="small")
    return _png(figure)
