"""The statistics charts' layout (services/console/secretariat/charts.py): every figure drawn to
scale, in order, on an axis that covers it."""

from __future__ import annotations

import pytest

from services.console.secretariat.charts import (
    BOTTOM,
    HEIGHT,
    TOP,
    axis_ticks,
    monthly_chart,
    nice_ceiling,
    response_chart,
)
from services.secretariat.statistics import FamilyMonth, TracingStat


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 1), (1, 1), (3, 5), (7, 10), (10, 10), (11, 20), (0.3, 0.5), (4200, 5000)],
)
def test_the_axis_ends_on_the_next_round_figure(value: float, expected: float) -> None:
    assert nice_ceiling(value) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("top", "ticks"),
    [(1, [0, 1]), (2, [0, 1, 2]), (5, [0, 1, 2, 3, 4, 5]), (10, [0, 2, 4, 6, 8, 10]),
     (20, [0, 5, 10, 15, 20]), (0.5, [0, 0.1, 0.2, 0.3, 0.4, 0.5])],
)  # fmt: skip
def test_axis_steps_are_round_and_whole_on_a_count_axis(top: float, ticks: list[float]) -> None:
    assert axis_ticks(top) == pytest.approx(ticks)


def test_months_are_columns_stacked_by_family_to_scale() -> None:
    rows = [
        FamilyMonth(month="2026-11", family="tracing", messages=3),
        FamilyMonth(month="2026-10", family="info", messages=2),
        FamilyMonth(month="2026-11", family="info", messages=5),
    ]
    chart = monthly_chart(rows, ["info", "tracing", "transfer"])
    assert chart is not None
    assert [label for _, label in chart.categories] == ["2026-10", "2026-11"]
    assert chart.series == ["info", "tracing"]  # families with no message get no legend entry
    plot_h = HEIGHT - TOP - BOTTOM
    top = chart.ticks[-1].value
    assert top == 10  # 8 messages in November, on an axis to 10
    for bar in chart.bars:
        assert bar.height == pytest.approx(plot_h * bar.value / top)
    november = [b for b in chart.bars if b.category == "2026-11"]
    assert [b.series for b in november] == ["info", "tracing"]
    # stacked: the tracing block sits on the info block, which stands on the axis
    info, tracing = november
    assert info.y + info.height == pytest.approx(TOP + plot_h)
    assert tracing.y + tracing.height == pytest.approx(info.y)
    assert {b.x for b in november} == {info.x} and info.x > chart.bars[0].x


def test_no_message_no_chart() -> None:
    assert monthly_chart([], ["info"]) is None


def _stat(state: str, median: float | None, longest: float | None) -> TracingStat:
    return TracingStat(
        state=state, requests=2, answered=1 if median is not None else 0,
        unanswered=1, overdue_notices=0, median_hours=median, mean_hours=median,
        max_hours=longest,
    )  # fmt: skip


def test_response_times_are_rows_of_median_over_longest_for_answered_states_only() -> None:
    chart = response_chart([_stat("USA", 12, 30), _stat("COL", None, None), _stat("MEX", 4, 4)])
    assert chart is not None
    assert [label for _, label in chart.categories] == ["USA", "MEX"]
    assert chart.ticks[-1].value == 50
    widths = {(b.category, b.series): b.width for b in chart.bars}
    assert widths[("USA", "median")] / widths[("USA", "longest")] == pytest.approx(12 / 30)
    assert widths[("MEX", "median")] == pytest.approx(widths[("MEX", "longest")])
    assert widths[("USA", "longest")] / widths[("MEX", "longest")] == pytest.approx(30 / 4)


def test_no_answer_no_response_chart() -> None:
    assert response_chart([_stat("COL", None, None)]) is None
