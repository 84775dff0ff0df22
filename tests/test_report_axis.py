"""The report's plots span the data (not always 90 days), count documents in whole numbers, and keep
claims without documents out of the per-claim grid (collapsed at its end)."""

from __future__ import annotations

import re
from datetime import date, timedelta

from crawler.services.reporting import (
    MIN_AXIS_DAYS,
    ClaimSeries,
    ReportOptions,
    axis_span,
    build_report,
    heat_map_figure,
)


def series(*days: date) -> ClaimSeries:
    return ClaimSeries("k", "s", "t", {day: 1 for day in days}, len(days))


def test_axis_fits_the_data_within_the_period() -> None:
    since, until = date(2025, 9, 1), date(2025, 11, 30)
    # two weeks of data at the end of a 90-day period: the axis spans those weeks, not 90 days
    first, last = axis_span([series(date(2025, 11, 14), date(2025, 11, 27))], since, until)
    assert (first, last) == (date(2025, 11, 14), date(2025, 11, 27))
    # one day of data: widened backwards to MIN_AXIS_DAYS
    first, last = axis_span([series(date(2025, 11, 20))], since, until)
    assert (last - first).days + 1 == MIN_AXIS_DAYS and last == date(2025, 11, 20)
    # never before the period's start, and the whole period when there is no data
    assert axis_span([series(date(2025, 9, 3))], since, until)[0] == since
    assert axis_span([], since, until) == (since, until)


def test_report_spans_the_data_and_collapses_unmatched_claims(research_data) -> None:  # type: ignore[no-untyped-def]
    with research_data.sessions() as session:
        page = build_report(session)
        narrow = build_report(session, ReportOptions(since=research_data.today - timedelta(days=3)))
    spans = re.search(r"Plots span (\d{4}-\d\d-\d\d) to (\d{4}-\d\d-\d\d)", page)
    assert spans is not None
    first, last = (date.fromisoformat(x) for x in spans.groups())
    assert (last - first).days < 90 and last <= research_data.today
    assert page.count('class="trend"') == 3
    assert '<details id="unmatched"><summary>1 claim without documents' in page and "seed-04" in page
    narrow_span = re.search(r"Plots span (\d{4}-\d\d-\d\d)", narrow)
    assert narrow_span is None or date.fromisoformat(narrow_span.group(1)) >= research_data.today - timedelta(
        days=3
    )


def colorbar_ticks(matrix: list[list[int]]) -> list[float]:
    import matplotlib.pyplot as plt

    weeks = [date(2025, 11, 3) + timedelta(weeks=i) for i in range(len(matrix[0]))]
    figure = heat_map_figure([f"c{i}" for i in range(len(matrix))], weeks, matrix)
    try:
        colorbar_axes = figure.axes[1]
        low, high = colorbar_axes.get_ylim()
        return [t for t in colorbar_axes.get_yticks() if low - 1e-9 <= t <= high + 1e-9]
    finally:
        plt.close(figure)


def test_heat_map_colour_scale_is_whole_documents() -> None:
    assert colorbar_ticks([[0, 1, 3, 0], [2, 0, 1, 1]]) == [0, 1, 2, 3]  # one colour per count
    assert colorbar_ticks([[0, 1]]) == [0, 1]  # not 0.25 steps
    many = colorbar_ticks([[0, 5, 40], [80, 2, 0]])
    assert many and all(float(t).is_integer() for t in many)
