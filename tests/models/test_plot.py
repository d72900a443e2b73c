"""models/plot.py: curves drawn where their values say, open markers where asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from models.plot import line_plot

# The plot area of line_plot: left 80, top 50, 720x380; values are padded by 5% (x), 8% (y).
LEFT, TOP, W, H = 80, 50, 720, 380


def pixel_of(x: float, y: float) -> tuple[int, int]:
    # Two points at x 0..10, y 0..10: padded ranges -0.5..10.5 and -0.8..10.8.
    return (
        round(LEFT + (x + 0.5) / 11 * W),
        round(TOP + H - (y + 0.8) / 11.6 * H),
    )


def test_points_are_filled_unless_listed_as_hollow(tmp_path: Path) -> None:
    path = tmp_path / "plot.png"
    line_plot(
        {"a": [(0.0, 0.0), (10.0, 10.0)]},
        path,
        title="t",
        x_label="x",
        y_label="y",
        hollow={"a": {(10.0, 10.0)}},
    )
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        filled, hollow = rgb.getpixel(pixel_of(0, 0)), rgb.getpixel(pixel_of(10, 10))
        ring = rgb.getpixel((pixel_of(10, 10)[0] + 4, pixel_of(10, 10)[1]))
    assert filled == (0, 0, 128)  # navy, the first colour
    assert hollow == (255, 255, 255)
    assert ring == (0, 0, 128)


def test_nothing_to_plot_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nothing to plot"):
        line_plot({}, tmp_path / "p.png", title="t", x_label="x", y_label="y")
