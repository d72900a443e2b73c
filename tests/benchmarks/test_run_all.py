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


def test_the_scaling_section_is_measured_with_its_arguments_and_links_its_plot(
    run_all: ModuleType, tmp_path: Path
) -> None:
    defaults = run_all.parser().parse_args([])
    assert defaults.scaling_batches == [1, 2, 4, 8]
    assert (defaults.scaling_processes, defaults.scaling_clients) == ([1, 2], [1, 4, 16])
    args = run_all.parser().parse_args(
        [
            *("--threads", "2", "--repeat", "1", "--ingest-frames", "2"),
            *("--scaling-frames", "2", "--scaling-size", "16", "--scaling-batches", "1"),
            *("--scaling-clients", "1"),
        ]
    )
    served = run_all.restore_cpu.load("default", "torch")  # the model the worker processes load
    text = run_all.scaling_section(served, None, args, tmp_path / "RESULTS.md")
    for row in ("| 1 | ", "| 1 x 2 | ", "| 2 x 1 | "):
        assert row in text
    assert "Restore against batch size: torch, 16x16 LR" in text
    assert text.endswith(f"]({run_all.PLOT_NAME})")
    with Image.open(tmp_path / run_all.PLOT_NAME) as image:
        assert image.format == "PNG" and image.width > 0


def test_the_machine_line_names_the_cpu_its_model_and_the_simd_that_picks_the_engine(
    run_all: ModuleType,
) -> None:
    zen4 = (
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
        "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16\n"
        "processor\t: 1\nmodel name\t: ignored: the first processor's fields are kept\n"
    )
    line = run_all.machine(zen4)
    assert line.startswith("AMD EPYC (family 25, model 17), avx2/avx512f/avx512_vnni/avx512_bf16, ")
    assert line.endswith(" cores available")
    assert ", no AVX2, " in run_all.machine("model name\t: Old CPU\nflags\t\t: fpu sse2\n")
    assert "SIMD not known" in run_all.machine("")
