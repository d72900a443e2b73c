"""benchmarks/run_all.py without the CCTV data: its synthetic set is what the restore benchmarks
read (train/ for calibration, val/ for PSNR-Y), distinct frames in each."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from models.data import find_images
from tests.benchmarks.scripts import load_script


@pytest.fixture(scope="module")
def run_all() -> ModuleType:
    return load_script("run_all.py", "run_all_bench")


def test_the_synthetic_set_has_distinct_400px_frames_to_calibrate_and_to_score(
    run_all: ModuleType, tmp_path: Path
) -> None:
    data = run_all.synthetic_data(tmp_path, count=3)
    train, val = find_images(data / "train"), find_images(data / "val")
    assert len(train) == len(val) == 3
    pixels = [np.asarray(Image.open(path)) for path in train + val]
    assert all(p.shape == (400, 400, 3) for p in pixels)
    assert len({p.tobytes() for p in pixels}) == 6
