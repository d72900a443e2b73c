"""Charts as inline SVG geometry, computed here and drawn by templates/charts.html: axes with
ticks, dates and units, and a title on every mark (its exact value on hover)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 70, 16, 14, 44  # room for the axes' labels
MAX_X_LABELS = 8
PALETTE = ("#2f6db5", "#d0822a", "#3a9a5b", "#b5452f", "#7a5cc2", "#4d8f9c", "#a0782f")

BYTE_UNITS = ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1.0, "B"))


def byte_unit(largest: float) -> tuple[float, str]:
    """The decimal unit the axis of bytes up to `largest` is labelled in."""
    for size, name in BYTE_UNITS:
        if largest >= size:
            return size, name
    return 1.0, "B"


def format_bytes(value: float) -> str:
    """1234567 -> "1.23 MB" (decimal units, as storage is priced)."""
    size, name = byte_unit(abs(value))
    return f"{value:.0f} B" if name == "B" else f"{value / size:.2f} {name}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) spanning [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass(frozen=True)
class Line:
    points: str  # "x,y x,y ..." for <polyline>
    dots: list[tuple[float, float, str]]  # x, y, title
    color: str


@dataclass(frozen=True)
class Legend:
    label: str
    color: str


@dataclass
class Chart:
    title: str
    y_label: str  # the quantity and its unit
    x_label: str
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    legend: list[Legend] = field(default_factory=list)
    empty: str = ""  # what to say instead of an empty plot
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def _y_scale(chart: Chart, low: float, high: float) -> Callable[[float], float]:
    def scale(value: float) -> float:
        return chart.bottom - (value - low) / (high - low) * (chart.bottom - chart.top)

    return scale


def daily_bytes_chart(
    days: Sequence[dt.date], series: dict[str, Sequence[int]], *, title: str
) -> Chart:
    """Grouped bars per capture day, one per series (e.g. uploaded and stored), in bytes."""
    chart = Chart(title=title, y_label="", x_label="capture date (UTC)")
    chart.legend = [Legend(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(series)]
    if not days:
        chart.empty = "No frames yet."
        return chart
    largest = max([1, *(v for values in series.values() for v in values)])
    size, unit = byte_unit(largest)
    ticks = nice_ticks(0.0, largest / size)
    high = ticks[-1] * size
    chart.y_label = f"bytes per day ({unit})"
    y = _y_scale(chart, 0.0, high)
    chart.y_ticks = [Tick(y(t * size), f"{t:g}") for t in ticks]
    slot = (chart.right - chart.left) / len(days)
    bar_width = slot * 0.8 / max(1, len(series))
    every = max(1, math.ceil(len(days) / MAX_X_LABELS))
    for i, day in enumerate(days):
        x0 = chart.left + i * slot + slot * 0.1
        if i % every == 0:
            chart.x_ticks.append(Tick(chart.left + (i + 0.5) * slot, day.isoformat()))
        for j, (name, values) in enumerate(series.items()):
            value = values[i]
            chart.bars.append(
                Bar(
                    x=round(x0 + j * bar_width, 2),
                    y=round(y(value), 2),
                    width=round(max(bar_width - 1, 1), 2),
                    height=round(chart.bottom - y(value), 2),
                    color=PALETTE[j % len(PALETTE)],
                    title=f"{day.isoformat()} {name}: {format_bytes(value)} ({value:,} bytes)",
                )
            )
    return chart


def dated_lines_chart(
    series: dict[str, Sequence[tuple[dt.date, float]]], *, title: str, y_label: str, unit: str
) -> Chart:
    """One line per series over a date axis (e.g. restored PSNR-Y per camera, in dB)."""
    chart = Chart(title=title, y_label=y_label, x_label="capture date (UTC)")
    points = [p for values in series.values() for p in values]
    if not points:
        chart.empty = "Nothing measured yet."
        return chart
    first = min(d for d, _ in points)
    last = max(d for d, _ in points)
    span = max((last - first).days, 1)
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    ticks = nice_ticks(math.floor(low - 0.5), math.ceil(high + 0.5))
    y = _y_scale(chart, ticks[0], ticks[-1])
    chart.y_ticks = [Tick(y(t), f"{t:g}") for t in ticks]
    pad = 40  # half a date label: the first and last fit inside the plot
    inner = chart.right - chart.left - 2 * pad

    def x(day: dt.date) -> float:
        if first == last:
            return chart.left + pad + inner / 2
        return chart.left + pad + (day - first).days / span * inner

    step = max(1, math.ceil((span + 1) / MAX_X_LABELS))
    day = first
    while day <= last:
        chart.x_ticks.append(Tick(round(x(day), 2), day.isoformat()))
        day += dt.timedelta(days=step)
    for i, (name, values) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        chart.legend.append(Legend(name, color))
        coords = [
            (round(x(d), 2), round(y(v), 2), f"{name} {d}: {v:.2f} {unit}") for d, v in values
        ]
        chart.lines.append(
            Line(points=" ".join(f"{a},{b}" for a, b, _ in coords), dots=coords, color=color)
        )
    return chart
