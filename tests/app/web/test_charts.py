"""Chart geometry: round ticks, decimal byte units, bars to scale, dates on the axis."""

from __future__ import annotations

import datetime as dt

import pytest

from app.web.charts import daily_bytes_chart, dated_lines_chart, format_bytes, nice_ticks


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (0, 7.3, [0, 2, 4, 6, 8]),
        (0, 155.68, [0, 50, 100, 150, 200]),
        (17, 19, [17, 17.5, 18, 18.5, 19]),
        (0, 0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),  # nothing yet: still an axis
    ],
)
def test_ticks_are_round_and_span_the_data(low: float, high: float, ticks: list[float]) -> None:
    assert nice_ticks(low, high) == pytest.approx(ticks)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.00 kB"), (155_675, "155.68 kB"), (2.5e9, "2.50 GB")],
)
def test_bytes_are_shown_in_decimal_units(value: float, shown: str) -> None:
    assert format_bytes(value) == shown


def test_bars_are_to_scale_with_the_unit_and_every_date() -> None:
    days = [dt.date(2024, 5, 1), dt.date(2024, 5, 2)]
    chart = daily_bytes_chart(
        days, {"uploaded": [40_000, 80_000], "stored": [10_000, 0]}, title="t"
    )
    assert chart.y_label == "bytes per day (kB)"
    assert [t.label for t in chart.y_ticks][-1] == "80"  # the top tick is the largest bar
    heights = {bar.title.split(" (")[0]: bar.height for bar in chart.bars}
    assert heights["2024-05-02 uploaded: 80.00 kB"] == pytest.approx(
        2 * heights["2024-05-01 uploaded: 40.00 kB"]
    )
    assert heights["2024-05-01 stored: 10.00 kB"] == pytest.approx(
        heights["2024-05-01 uploaded: 40.00 kB"] / 4
    )
    assert [t.label for t in chart.x_ticks] == ["2024-05-01", "2024-05-02"]
    assert all(bar.y + bar.height == pytest.approx(chart.bottom) for bar in chart.bars)


def test_lines_place_dates_by_time_not_by_rank() -> None:
    series = {
        "cam": [
            (dt.date(2024, 5, 1), 30.0),
            (dt.date(2024, 5, 2), 31.0),
            (dt.date(2024, 5, 11), 32.0),
        ]
    }
    chart = dated_lines_chart(series, title="t", y_label="PSNR-Y (dB)", unit="dB")
    xs = [x for x, _, _ in chart.lines[0].dots]
    assert (xs[2] - xs[0]) == pytest.approx(10 * (xs[1] - xs[0]))  # 10 days vs 1 day
    assert chart.lines[0].dots[2][2] == "cam 2024-05-11: 32.00 dB"


def test_empty_charts_say_so() -> None:
    assert daily_bytes_chart([], {"uploaded": []}, title="t").empty == "No frames yet."
    assert dated_lines_chart({}, title="t", y_label="y", unit="dB").empty == "Nothing measured yet."
