"""benchmarks/run_all.py without the CCTV data: its synthetic set is what the restore benchmarks
read (train/ for calibration, val/ for PSNR-Y), distinct frames in each."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from models.data import find_images

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_all_bench", ROOT / "benchmarks/run_all.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_all_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_the_synthetic_set_has_distinct_400px_frames_to_calibrate_and_to_score(
    run_all: ModuleType, tmp_path: Path
) -> None:
    data = run_all.synthetic_data(tmp_path, count=3)
    train, val = find_images(data / "train"), find_images(data / "val")
    assert len(train) == len(val) == 3
    pixels = [np.asarray(Image.open(path)) for path in train + val]
    assert all(p.shape == (400, 400, 3) for p in pixels)
    assert len({p.tobytes() for p in pixels}) == 6
