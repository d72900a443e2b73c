"""Line plots drawn with Pillow (models/ needs no plotting library): one curve per series."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = (
    "navy",
    "firebrick",
    "darkgreen",
    "darkorange",
    "purple",
    "teal",
    "saddlebrown",
    "gray",
    "black",
    "deepskyblue",
    "olive",
    "deeppink",
)


def line_plot(
    series: dict[str, list[tuple[float, float]]],
    path: Path,
    *,
    title: str,
    x_label: str,
    y_label: str,
    log_x: bool = False,
    dashed: tuple[str, ...] = (),
    hollow: dict[str, set[tuple[float, float]]] | None = None,
) -> None:
    """Each series as a line with markers, a legend on the right; `dashed` names are dashed and
    the points listed in `hollow` (per series) are drawn as open circles."""
    width, height, left, top, plot_w, plot_h = 1100, 520, 80, 50, 720, 380
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((left, 15), title, fill="black")
    points = [p for values in series.values() for p in values]
    if not points:
        raise ValueError("nothing to plot")
    fx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    xs, ys = [fx(x) for x, _ in points], [y for _, y in points]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    x_pad = (x_hi - x_lo) * 0.05 or 1.0
    y_pad = (y_hi - y_lo) * 0.08 or 0.5
    x_lo, x_hi, y_lo, y_hi = x_lo - x_pad, x_hi + x_pad, y_lo - y_pad, y_hi + y_pad

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (
            left + (fx(x) - x_lo) / (x_hi - x_lo) * plot_w,
            top + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h,
        )

    draw.rectangle((left, top, left + plot_w, top + plot_h), outline="black")
    for i in range(6):
        y = y_lo + (y_hi - y_lo) * i / 5
        draw.text((8, to_px(10**x_lo if log_x else x_lo, y)[1] - 6), f"{y:.2f}", fill="black")
    for i in range(6):
        v = x_lo + (x_hi - x_lo) * i / 5
        x = 10**v if log_x else v
        px = left + (v - x_lo) / (x_hi - x_lo) * plot_w
        draw.line((px, top + plot_h, px, top + plot_h + 4), fill="black")
        draw.text((px - 14, top + plot_h + 8), f"{x:.3g}", fill="black")
    draw.text((left + plot_w / 2 - 80, top + plot_h + 26), x_label, fill="black")
    draw.text((8, top - 20), y_label, fill="black")
    for i, (name, values) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        open_points = (hollow or {}).get(name, set())
        px = [to_px(x, y) for x, y in sorted(values)]
        if name in dashed:
            for a, b in itertools.pairwise(px):
                _dashed_line(draw, a, b, colour)
        elif len(px) > 1:
            draw.line(px, fill=colour, width=2)
        for (x, y), point in zip(px, sorted(values), strict=True):
            if point in open_points:
                draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill="white", outline=colour, width=2)
            else:
                draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
        ly = top + 4 + 18 * i
        draw.line((left + plot_w + 20, ly + 6, left + plot_w + 44, ly + 6), fill=colour, width=3)
        draw.text((left + plot_w + 50, ly), name[:40], fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _dashed_line(
    draw: ImageDraw.ImageDraw, a: tuple[float, float], b: tuple[float, float], colour: str
) -> None:
    length = math.dist(a, b)
    for start in range(0, int(length), 10):
        t0, t1 = start / length, min(start + 6, length) / length
        draw.line(
            (
                a[0] + (b[0] - a[0]) * t0,
                a[1] + (b[1] - a[1]) * t0,
                a[0] + (b[0] - a[0]) * t1,
                a[1] + (b[1] - a[1]) * t1,
            ),
            fill=colour,
            width=2,
        )
