"""The whole-frame alternative at equal bytes: the highest WebP quality whose encoding of the HR
frame fits a budget, checked against a brute-force scan of every quality on real images."""

from __future__ import annotations

import io
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from app.stats.recompression import (
    MAX_QUALITY,
    encode_webp,
    largest_quality_within,
    recompress_within,
)
from models import decode_image
from tests.app.images import scene
from tests.benchmarks.scripts import load_script


@pytest.fixture(scope="module")
def rd() -> ModuleType:
    """benchmarks/rate_distortion.py, whose encode_full the archive's comparison must match."""
    return load_script("rate_distortion.py", "rate_distortion")


def all_sizes(hr: np.ndarray) -> list[int]:
    """Brute force: the WebP size of every quality 0..100."""
    return [len(encode_webp(hr, quality)) for quality in range(MAX_QUALITY + 1)]


def brute_force(sizes: list[int], budget: int) -> int | None:
    fitting = [quality for quality, size in enumerate(sizes) if size <= budget]
    return max(fitting) if fitting else None


@pytest.mark.parametrize("seed", [0, 3])
def test_the_search_finds_the_largest_quality_within_every_budget(seed: int) -> None:
    hr = scene(64, 48, seed)
    sizes = all_sizes(hr)
    # WebP's sizes dip now and then as quality rises: a plain bisection would miss some budgets.
    budgets = sorted({s + d for s in sizes for d in (-1, 0, 1)} | {0, 10 * max(sizes)})
    for budget in budgets:
        found, tried = largest_quality_within(budget, lambda q: sizes[q])
        assert found == brute_force(sizes, budget), budget
        assert len(tried) < 40  # far fewer encodings than the 101 of a scan


def test_recompressing_within_a_budget_encodes_the_frame_at_that_quality() -> None:
    hr = scene(96, 72, 1)
    sizes = all_sizes(hr)
    budget = sizes[60]
    result = recompress_within(hr, budget)
    assert result.fits and result.quality == brute_force(sizes, budget)
    assert result.data is not None and result.size == len(result.data) <= budget
    assert result.data == encode_webp(hr, result.quality)
    decoded = decode_image(result.data)
    assert decoded.shape == hr.shape
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.format == "WEBP"


def test_a_budget_below_quality_zero_fits_no_webp_frame() -> None:
    hr = scene(64, 48, 2)
    result = recompress_within(hr, 20)
    assert not result.fits and result.quality is None and result.data is None
    assert result.size == len(encode_webp(hr, 0)) > 20  # how small WebP gets: quality 0


def test_the_encoding_is_the_rate_distortion_benchmarks(rd: ModuleType) -> None:
    hr = scene(80, 60, 4)
    for quality in (0, 37, 90):
        assert encode_webp(hr, quality) == rd.encode_full(Image.fromarray(hr), "webp", quality)
