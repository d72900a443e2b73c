"""The whole-frame alternative at the same bytes: what recompressing the canonical HR frame with
WebP would give for the bytes the archive spends on the half-resolution frame.

Same encoder settings as the rate-distortion benchmark's `encode_full` for WebP
(benchmarks/rate_distortion.py): Pillow's lossy WebP at `quality`, method 6.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

WEBP_METHOD = 6
MIN_QUALITY, MAX_QUALITY = 0, 100
# WebP's size is not strictly monotonic in quality: a higher quality is now and then a few bytes
# smaller (measured on test scenes: up to 6 consecutive qualities above the budget before one
# that fits again). After bisecting, qualities above are tried until this many in a row are over.
OVERSHOOT = 10


def encode_webp(hr: np.ndarray, quality: int) -> bytes:
    """The whole HR frame (HxWx3 uint8 RGB) as lossy WebP at `quality`, method 6."""
    out = io.BytesIO()
    Image.fromarray(hr).save(out, format="WEBP", quality=quality, method=WEBP_METHOD)
    return out.getvalue()


@dataclass(frozen=True)
class Recompressed:
    """The highest WebP quality within the budget, or None when even quality 0 is larger."""

    budget: int
    quality: int | None
    size: int  # bytes of that encoding; of quality 0 when nothing fits
    data: bytes | None  # the encoding (None when nothing fits)

    @property
    def fits(self) -> bool:
        return self.quality is not None


def largest_quality_within(
    budget: int, size_of: Callable[[int], int]
) -> tuple[int | None, dict[int, int]]:
    """The largest quality in 0..100 whose size is at most `budget` (bisection, then the
    qualities above it until OVERSHOOT in a row are over budget); None when quality 0 is over.
    Returns it with the sizes tried."""
    sizes: dict[int, int] = {}

    def size(quality: int) -> int:
        if quality not in sizes:
            sizes[quality] = size_of(quality)
        return sizes[quality]

    if size(MIN_QUALITY) > budget:
        return None, sizes
    if size(MAX_QUALITY) <= budget:
        return MAX_QUALITY, sizes
    low, high = MIN_QUALITY, MAX_QUALITY  # size(low) <= budget < size(high)
    while high - low > 1:
        middle = (low + high) // 2
        if size(middle) <= budget:
            low = middle
        else:
            high = middle
    best, over = low, 0
    for quality in range(low + 1, MAX_QUALITY):
        if size(quality) <= budget:
            best, over = quality, 0
        else:
            over += 1
            if over >= OVERSHOOT:
                break
    return best, sizes


def recompress_within(hr: np.ndarray, budget: int) -> Recompressed:
    """The HR frame recompressed whole with WebP at the highest quality no larger than
    `budget` bytes."""
    encodings: dict[int, bytes] = {}

    def size_of(quality: int) -> int:
        encodings[quality] = encode_webp(hr, quality)
        return len(encodings[quality])

    quality, sizes = largest_quality_within(budget, size_of)
    if quality is None:
        return Recompressed(budget=budget, quality=None, size=sizes[MIN_QUALITY], data=None)
    return Recompressed(
        budget=budget, quality=quality, size=sizes[quality], data=encodings[quality]
    )
