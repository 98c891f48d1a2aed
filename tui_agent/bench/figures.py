"""Benchmark figures: a value, its target, whether it is met, and how it was measured."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

# Fewer values than this give no 95% interval of the median: even min..max holds it less surely.
INTERVAL_MIN_VALUES = 6


@dataclass(frozen=True)
class Figure:
    section: str
    name: str
    value: float | None
    unit: str = ""
    target: str = ""  # "≥ 0.97", "≤ 200 ms" or "" for an informative figure
    detail: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None or not self.target:
            return None
        op, _, bound = self.target.partition(" ")
        limit = float(bound.split()[0])
        return self.value >= limit if op == "≥" else self.value <= limit


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float
    n: int
    interval: tuple[float, float] | None = None  # holds the true median with ≥ 95% confidence

    def describe(self, unit: str, digits: int = 1) -> str:
        text = f"median {self.median:.{digits}f} {unit} (min {self.low:.{digits}f}, max {self.high:.{digits}f}, n={self.n}"
        if self.interval is not None:
            low, high = self.interval
            text += f"; 95% interval of the median {low:.{digits}f}–{high:.{digits}f}"
        return text + ")"


def spread(values: Sequence[float]) -> Spread:
    interval = median_interval(values) if len(values) >= INTERVAL_MIN_VALUES else None
    return Spread(statistics.median(values), min(values), max(values), len(values), interval)


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """The k-th smallest and k-th largest value, with k as large as keeps the chance that the
    true median lies outside below 1 - ``confidence``. It assumes nothing about how the values
    are distributed (each falls below the median with probability 1/2), which suits timings on a
    machine whose speed drifts."""
    ordered = sorted(values)
    n = len(ordered)
    tail = (1 - confidence) / 2
    k = 1  # the interval runs from the k-th smallest to the k-th largest value
    below = 1 / 2**n  # P(at most k - 1 values fall below the median), for k = 1
    while k < (n + 1) // 2 and below + math.comb(n, k) / 2**n <= tail:
        below += math.comb(n, k) / 2**n
        k += 1
    return ordered[k - 1], ordered[n - k]


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def render_table(figures: list[Figure], machine: str) -> str:
    lines = [f"llamachat bench — {machine}", ""]
    section = ""
    for figure in figures:
        if figure.section != section:
            section = figure.section
            lines.append(section)
        value = "skipped" if figure.value is None else f"{figure.value:.3g} {figure.unit}".strip()
        met = {True: "✓ met", False: "✗ missed", None: ""}[figure.met]
        target = f"target {figure.target}" if figure.target else ""
        lines.append(f"  {figure.name:<44} {value:>14}  {target:<18} {met}")
        if figure.detail:
            lines.append(f"  {'':<44}   {figure.detail}")
    return "\n".join(lines)


def render_json(figures: list[Figure], machine: str) -> str:
    return json.dumps(
        {"machine": machine, "figures": [{**asdict(f), "met": f.met} for f in figures]},
        ensure_ascii=False,
        indent=2,
    )
