"""The statistics page's charts, laid out here and drawn by the template as SVG: no script, no
inline style (the colours come from console.css by class), so the Content-Security-Policy stays
as strict as on every other page. Each chart sits above the table of the same figures, so a
screen reader or a printout loses nothing; every bar carries its figure as a tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from services.secretariat.statistics import FamilyMonth, TracingStat

#: The drawing area and the margins around it, in SVG user units (the SVG scales to its box).
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 8, 28
#: One row of the response-time chart.
ROW, ROW_GAP = 18, 6


@dataclass(frozen=True)
class Bar:
    """One rectangle: ``series`` names its colour (a family, or ``median``/``longest``)."""

    x: float
    y: float
    width: float
    height: float
    series: str
    category: str  # the month, or the state
    value: float


@dataclass(frozen=True)
class Tick:
    at: float  # where on its axis
    value: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    categories: list[tuple[float, str]]  # each category's label and where it is written
    ticks: list[Tick]
    series: list[str]  # the legend, in drawing order


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is at least ``value`` (1 for none)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    raise AssertionError("unreachable: 10 * power >= value")


def axis_ticks(top: float) -> list[float]:
    """Round steps up to ``top`` (a :func:`nice_ceiling`): fifths of 1 and 5, quarters of 2, and
    never a step under 1 on an axis of 1 or more (counts come in whole messages)."""
    leading = round(top / 10 ** math.floor(math.log10(top)))
    count = 4 if leading == 2 else 5
    if top >= 1:
        count = min(count, int(top))
    return [top * i / count for i in range(count + 1)]


def monthly_chart(rows: Sequence[FamilyMonth], families: Sequence[str]) -> Chart | None:
    """Messages per month as one column each, stacked by family in ``families``' order (a
    family not named there comes after them). None when nothing was recorded."""
    if not rows:
        return None
    months = sorted({r.month for r in rows})
    order = list(families) + sorted({r.family for r in rows} - set(families))
    counts = {(r.month, r.family): r.messages for r in rows}
    totals = {m: sum(counts.get((m, f), 0) for f in order) for m in months}
    top = nice_ceiling(max(totals.values()))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(months)
    column = min(slot * 0.7, 72.0)
    bars: list[Bar] = []
    categories: list[tuple[float, str]] = []
    for i, month in enumerate(months):
        x = LEFT + i * slot + (slot - column) / 2
        base: float = TOP + plot_h
        for family in order:
            n = counts.get((month, family), 0)
            if not n:
                continue
            h = plot_h * n / top
            base -= h
            bars.append(Bar(x, base, column, h, family, month, n))
        categories.append((x + column / 2, month))
    ticks = [Tick(TOP + plot_h - plot_h * v / top, v) for v in axis_ticks(top)]
    used = [f for f in order if any(b.series == f for b in bars)]
    return Chart(WIDTH, HEIGHT, bars, categories, ticks, used)


def response_chart(rows: Sequence[TracingStat]) -> Chart | None:
    """Each requested state's median and longest response, in hours, as horizontal bars (the
    longest behind, the median over it). None when no request was answered yet."""
    answered = [r for r in rows if r.median_hours is not None]
    if not answered:
        return None
    top = nice_ceiling(max(r.max_hours or r.median_hours or 0.0 for r in answered))
    plot_w = WIDTH - LEFT - RIGHT
    height = TOP + len(answered) * (ROW + ROW_GAP) + BOTTOM
    bars: list[Bar] = []
    categories: list[tuple[float, str]] = []
    for i, r in enumerate(answered):
        y = TOP + i * (ROW + ROW_GAP)
        longest = r.max_hours if r.max_hours is not None else r.median_hours
        assert longest is not None and r.median_hours is not None
        bars.append(Bar(LEFT, y, plot_w * longest / top, ROW, "longest", r.state, longest))
        bars.append(
            Bar(LEFT, y + ROW / 4, plot_w * r.median_hours / top, ROW / 2, "median", r.state,
                r.median_hours)
        )  # fmt: skip
        categories.append((y + ROW / 2, r.state))
    ticks = [Tick(LEFT + plot_w * v / top, v) for v in axis_ticks(top)]
    return Chart(WIDTH, height, bars, categories, ticks, ["median", "longest"])
