"""benchmarks/scaling.py on tiny inputs: every batch size, process split and client count gets its
row, measured for real (worker processes, a real server), and the plot is one PNG of three
panels."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import torch
from PIL import Image

from models.checkpoint import save_model
from models.edsr import EDSRConfig
from models.plot import line_plot
from models.restorer import Restorer
from tests.benchmarks.scripts import load_script


@pytest.fixture(scope="module")
def scaling() -> ModuleType:
    # Registered as "scaling", the name the spawned worker processes import it by (benchmarks/ is
    # on their path, as on this one's).
    return load_script("scaling.py", "scaling")


def tiny() -> Restorer:
    return Restorer.from_config(EDSRConfig(n_resblocks=1, n_feats=8), batch_size=1)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(path, tiny().network, name="tiny", degradation_id=tiny().degradation_id)
    return str(path)


def panel_size(tmp_path: Path) -> tuple[int, int]:
    """The size of one models.plot.line_plot image (the scaling plot stacks three)."""
    line_plot({"a": [(1.0, 1.0)]}, tmp_path / "panel.png", title="", x_label="", y_label="")
    with Image.open(tmp_path / "panel.png") as image:
        return image.size


def rows(text: str) -> list[str]:
    """The first cell of every table body row."""
    lines = text.splitlines()
    headers = {i - 1 for i, line in enumerate(lines) if line.startswith("|---")}
    return [
        line.split("|")[1].strip()
        for i, line in enumerate(lines)
        if line.startswith("| ") and i not in headers
    ]


def test_every_batch_size_gets_a_rate_and_the_restorer_keeps_its_cap(scaling: ModuleType) -> None:
    restorer = tiny()
    frames = scaling.camera_frames((16, 16), 4)
    rates = scaling.restore_batches(restorer, frames, [1, 4], repeat=1)
    assert [(r.setting, r.x) for r in rates] == [("1", 1), ("4", 4)]
    assert all(r.frames_per_s > 0 for r in rates)
    assert restorer.batch_size == 1  # raised to 4 for the measurement only


def test_processes_split_the_cores_and_share_the_frames(
    scaling: ModuleType, tiny_model: str
) -> None:
    rates = scaling.restore_processes(
        model=tiny_model,
        engine="torch",
        calibration=None,
        threads=2,
        processes=[1, 2],
        size=(16, 16),
        count=2,
        repeat=1,
    )
    assert [(r.setting, r.x) for r in rates] == [("1 x 2", 1), ("2 x 1", 2)]
    assert all(r.frames_per_s > 0 for r in rates)


def test_main_prints_every_row_and_draws_three_panels(
    scaling: ModuleType, tiny_model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    threads = torch.get_num_threads()
    plot = tmp_path / "out" / "scaling.png"
    try:
        scaling.main(
            [
                *("--model", tiny_model, "--engine", "torch", "--threads", "2"),
                *("--frames", "2", "--repeat", "1", "--size", "16", "--batches", "1"),
                *("--processes", "1", "2", "--clients", "1", "2", "--ingest-frames", "2"),
                *("--plot", str(plot)),
            ]
        )
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "served engine torch" in out
    assert rows(out) == ["1", "1 x 2", "2 x 1", "1", "2"]
    assert "profile 400:2:webp-lossless (the default)" in out
    with Image.open(plot) as image:
        image.verify()
    width, height = panel_size(tmp_path)
    with Image.open(plot) as image:
        assert image.format == "PNG"
        assert image.size == (width, 3 * height)


def test_tables_and_plot_from_figures(scaling: ModuleType, tmp_path: Path) -> None:
    rate = scaling.Rate
    result = scaling.Scaling(
        engine="openvino-int8",
        threads=2,
        size=(200, 200),
        frames=8,
        repeat=3,
        batches=[rate("1", 1, 5.0), rate("2", 2, 5.5), rate("4", 4, 5.0), rate("8", 8, 4.0)],
        processes=[rate("1 x 2", 1, 5.0), rate("2 x 1", 2, 6.0)],
        profile="400:2:webp-lossless",
        uploads=48,
        clients=[rate("1", 1, 20.0, 30.0, 1.5), rate("4", 4, 30.0, 28.0, 1.8)],
    )
    text = scaling.tables(result)
    assert rows(text) == ["1", "2", "4", "8", "1 x 2", "2 x 1", "1", "4"]
    assert "| 2 | 182 | 5.50 | 1.10x |" in text  # ms/frame, frames/s, against batch 1
    assert "| 2 x 1 | 6.00 | 1.20x |" in text
    assert "| 4 | 30.0 | 28.0 | 1.8 | 1.50x |" in text
    assert text.count("openvino-int8") == 2  # both restore tables name the engine
    scaling.plot(result, tmp_path / "plot.png")
    width, height = panel_size(tmp_path)
    with Image.open(tmp_path / "plot.png") as image:
        assert image.size == (width, 3 * height)
        assert len(image.convert("RGB").getcolors(1 << 24) or []) > 2  # curves, not a blank page
