"""benchmarks/restore_gpu.py on the CPU: the device path restores what the fp32 network does, the
MAC count matches the convolutions counted by hand, and the script writes its table."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from models.checkpoint import save_model
from models.edsr import EDSR, EDSRConfig
from models.metrics import psnr
from tests.benchmarks.scripts import load_script


@pytest.fixture(scope="module")
def gpu() -> ModuleType:
    return load_script("restore_gpu.py", "gpu_bench")


def tiny() -> EDSR:
    torch.manual_seed(0)
    return EDSR(EDSRConfig(scale=2, n_resblocks=1, n_feats=8)).eval()


def test_macs_are_the_convolutions_counted_by_hand(gpu: ModuleType) -> None:
    h, w = 12, 20
    lr = h * w
    by_hand = (
        3 * 8 * 9 * lr  # head
        + 2 * 8 * 8 * 9 * lr  # the one residual block
        + 8 * 8 * 9 * lr  # body conv
        + 8 * 32 * 9 * lr  # upsampler conv, before the pixel shuffle
        + 8 * 3 * 9 * 4 * lr  # tail conv at HR
    )
    assert gpu.macs_per_frame(tiny(), h, w) == by_hand


@pytest.mark.parametrize(("dtype", "min_db"), [("fp32", 60.0), ("bf16", 35.0)])
def test_the_device_path_restores_what_the_fp32_network_does(
    gpu: ModuleType, dtype: str, min_db: float
) -> None:
    network, cpu = tiny(), torch.device("cpu")
    frames = np.random.default_rng(1).integers(0, 256, (3, 16, 24, 3), dtype=np.uint8)
    path = gpu.DevicePath(network, cpu, gpu.DTYPES[dtype], frames.shape)
    out = path.run(frames)
    with torch.no_grad():
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
        expected = network(x).clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert out.shape == (3, 32, 48, 3)
    assert psnr(out, expected) >= min_db


def test_the_script_writes_its_table(gpu: ModuleType, tmp_path: Path) -> None:
    model = tmp_path / "tiny.safetensors"
    save_model(model, tiny(), name="tiny", degradation_id="x")
    out = tmp_path / "gpu.md"
    args = ["--device", "cpu", "--model", str(model), "--sizes", "24x16", "--batches", "1", "2"]
    args += ["--dtypes", "fp32", "--seconds", "0", "--peak-tflops", "1", "--out", str(out)]
    assert gpu.main([*args, "--job-threads", "0"]) == 0  # the device table alone
    rows = [line for line in out.read_text().splitlines() if line.startswith("| 24x16 |")]
    assert [row.split(" | ")[2].split()[0] for row in rows] == ["1", "2"]
    assert sum("(best)" in row for row in rows) == 1
    limit = 1e12 / (2 * gpu.macs_per_frame(tiny(), 16, 24))
    assert all(f"| {limit:.0f} |" in row for row in rows)


def test_the_compiled_device_path_agrees_with_the_fp32_network(gpu: ModuleType) -> None:
    network, cpu = tiny(), torch.device("cpu")
    frames = np.random.default_rng(2).integers(0, 256, (2, 16, 24, 3), dtype=np.uint8)
    plain = gpu.DevicePath(network, cpu, torch.float32, frames.shape).run(frames).copy()
    compiled = gpu.DevicePath(network, cpu, torch.float32, frames.shape, compile=True)
    assert psnr(compiled.run(frames), plain) >= 60.0


def test_a_jobs_work_decodes_restores_and_encodes_every_frame(
    gpu: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    network, cpu = tiny(), torch.device("cpu")
    path = gpu.DevicePath(network, cpu, torch.float32, (2, 16, 24, 3))
    stored = gpu.stored_frames(3, 16, 24)
    encoded: list[tuple[int, ...]] = []
    real = gpu.encode_png

    def recording(frame: np.ndarray) -> int:
        encoded.append(frame.shape)
        return real(frame)

    monkeypatch.setattr(gpu, "encode_png", recording)
    rate = gpu.job_rate(path, stored, threads=2, seconds=0)
    assert rate > 0
    # One warm-up batch and at least three timed ones, each frame encoded at full size.
    assert len(encoded) >= 8 and len(encoded) % 2 == 0
    assert set(encoded) == {(32, 48, 3)}


def test_the_job_table_runs_around_each_sizes_best_row(gpu: ModuleType, tmp_path: Path) -> None:
    model = tmp_path / "tiny.safetensors"
    save_model(model, tiny(), name="tiny", degradation_id="x")
    out = tmp_path / "gpu.md"
    args = ["--device", "cpu", "--model", str(model), "--sizes", "24x16", "--batches", "1", "2"]
    args += ["--dtypes", "fp32", "--seconds", "0", "--job-threads", "2", "--out", str(out)]
    assert gpu.main(args) == 0
    text = out.read_text()
    assert "PNG encode on 2 threads" in text
    best = next(line for line in text.splitlines() if "(best)" in line).split(" | ")
    job = [line for line in text.splitlines() if line.startswith("| 24x16 | fp32 |")][-1]
    assert job.split(" | ")[2] == best[2].split()[0]  # the best row's batch
