"""Real images made in the tests: a street-like scene (gradients, blocks, stripes) in any format."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def scene(width: int = 160, height: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 / width, y * 255 / height, np.full_like(x, 90.0)], axis=-1)
    block = max(2, min(width, height) // 6)
    for _ in range(6):
        top, left = rng.integers(0, height - block), rng.integers(0, width - block)
        pixels[top : top + block, left : left + block] = rng.integers(0, 256, 3)
    pixels += rng.normal(0, 4, pixels.shape)  # sensor noise: every seed gives different bytes
    return pixels.clip(0, 255).astype(np.uint8)


def image_bytes(fmt: str = "PNG", width: int = 160, height: int = 120, seed: int = 0) -> bytes:
    """An encoded image: fmt is a Pillow format name (PNG, JPEG, WEBP, BMP, GIF, TIFF)."""
    out = io.BytesIO()
    image = Image.fromarray(scene(width, height, seed))
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    image.save(out, format=fmt, **options)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
