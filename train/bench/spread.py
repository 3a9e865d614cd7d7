"""Benchmark figures as the median of several runs with their range, and whether the median meets its target.

One run on a shared machine can be off by a third either way; a figure worth publishing is the median,
with the spread beside it so a reader can see how far to trust it.
"""

from __future__ import annotations

import statistics


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": list(values)}


def describe(figure: dict, unit: str = "", digits: int = 1) -> str:
    """'2.31x (2.10-2.45x, 3 runs)'."""
    if len(figure["runs"]) == 1:
        return f"{figure['median']:.{digits}f}{unit} (1 run)"
    return (f"{figure['median']:.{digits}f}{unit} ({figure['min']:.{digits}f}-{figure['max']:.{digits}f}{unit}, "
            f"{len(figure['runs'])} runs)")


def verdict(figure: dict, target: float) -> str:
    """Whether the median reaches `target` (a ratio), said so that a miss cannot be overlooked."""
    return f"{target:g}x target: {'met' if figure['median'] >= target else 'MISSED'}"
