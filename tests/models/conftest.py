from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(
    os.environ.get("CCTV_SHARED_DATA", Path(__file__).parents[2] / ".." / "shared" / "data")
)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data: present in CI (a missing folder fails there), skipped elsewhere."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA.resolve()
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the shared data folder {SHARED_DATA} is missing")
    pytest.skip(f"needs the shared data folder {SHARED_DATA} (present in CI)")


def scene(height: int = 120, width: int = 160, seed: int = 0) -> np.ndarray:
    """A synthetic street-camera-like frame: smooth gradient, hard-edged blocks, fine stripes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 / width, y * 255 / height, np.full_like(x, 90.0)], axis=-1)
    block = max(2, min(height, width) // 6)
    for _ in range(6):
        top, left = rng.integers(0, height - block), rng.integers(0, width - block)
        image[top : top + block, left : left + block] = rng.integers(0, 256, 3)
    stripes = min(12, height // 4)
    image[height // 2 : height // 2 + stripes, :] = ((x[:stripes] // 2) % 2 * 255)[..., None]
    return image.clip(0, 255).astype(np.uint8)


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "frames" / "cam-1"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(scene(seed=i)).save(folder / f"{i:03d}.png")
    return tmp_path / "frames"
