"""benchmarks/rate_distortion.py: the crossover arithmetic, and one small real run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from tests.benchmarks.scripts import load_script
from tests.models.conftest import scene


@pytest.fixture(scope="module")
def rd() -> ModuleType:
    return load_script("rate_distortion.py", "rate_distortion")


def test_pareto_keeps_only_points_nothing_cheaper_beats(rd: ModuleType) -> None:
    points = [(10, 30.0), (5, 28.0), (8, 27.0), (20, 29.0), (40, 31.0)]
    assert rd.pareto(points) == [(5, 28.0), (10, 30.0), (40, 31.0)]


def test_interpolation_is_linear_in_log_bytes_and_nan_outside(rd: ModuleType) -> None:
    curve = [(1000, 20.0), (100000, 40.0)]
    assert rd.interpolate(curve, 10000) == pytest.approx(30.0)
    assert math.isnan(rd.interpolate(curve, 999)) and math.isnan(rd.interpolate(curve, 100001))


def test_crossover_finds_the_byte_range_where_the_archive_wins(rd: ModuleType) -> None:
    # The archive is flatter: better at low bytes, worse at high bytes; they cross at 10 kB.
    archive = [(1000, 28.0), (100000, 32.0)]
    full = [(1000, 26.0), (100000, 34.0)]
    c = rd.crossover(archive, full, "webp")
    assert c.overlap == (1000, 100000)
    assert len(c.wins) == 1
    low, high = c.wins[0]
    assert low == pytest.approx(1000) and high == pytest.approx(10000, rel=0.03)
    assert c.best_margin_db == pytest.approx(2.0) and c.best_at_bytes == pytest.approx(1000)
    assert "the archive wins in 1.0-10." in rd.describe_crossover(c)


def test_no_crossover_says_by_how_much_it_misses(rd: ModuleType) -> None:
    c = rd.crossover([(2000, 26.0), (50000, 30.0)], [(5000, 29.0), (20000, 35.0)], "avif")
    assert c.wins == [] and c.best_margin_db < 0
    assert c.below_full_min == (2000, 26.0)
    text = rd.describe_crossover(c)
    assert "no crossover in 5.0-20.0 kB" in text and "below the smallest avif frame" in text


def test_a_codec_without_its_own_model_is_restored_by_the_nearest_and_flagged(
    rd: ModuleType,
) -> None:
    from models.degradation import Profile
    from models.registry import shipped_models

    models = shipped_models()
    model, matched = rd.choose_model(Profile(codec="webp-lossless"), models)
    assert (model.name, matched) == ("default", True)
    model, matched = rd.choose_model(Profile(codec="jpeg-q37"), models)
    assert not matched and Profile.parse(model.profile).hr_size == 400


def test_a_small_run_writes_the_table_the_json_and_the_plot(
    rd: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "frames"
    data.mkdir()
    for seed in range(2):
        Image.fromarray(scene(240, 320, seed=seed)).save(data / f"{seed:03d}.png")
    out = tmp_path / "out"

    assert rd.main(["--data", str(data), "--fast", "--threads", "1", "--out", str(out)]) == 0

    results = json.loads((out / "results.json").read_text())
    rows = {r["codec"]: r for r in results["rows"]}
    assert set(rows) == {"webp-lossless", "webp-q75", "jpeg-q75", "avif-q50"} | {
        "webp q75",
        "webp q20",
        "jpeg q75",
        "avif q50",
    }
    assert rows["webp-lossless"]["frames"] == 2 and rows["webp-lossless"]["matched"]
    assert rows["avif-q50"]["bytes"] < rows["webp-lossless"]["bytes"]
    assert all(r["psnr"] > 10 for r in rows.values())
    table = (out / "rate_distortion.md").read_text()
    assert "| webp-lossless |" in table and "against whole-frame webp" in table
    assert "the model 1 pass per frame" in table
    with Image.open(out / "plot.png") as plot:
        assert plot.size == (1100, 520)
    assert "wrote" in capsys.readouterr().out

    twice = tmp_path / "twice"
    args = ["--data", str(data), "--fast", "--threads", "1", "--frames", "1", "--out", str(twice)]
    assert rd.main([*args, "--ensemble", "2"]) == 0
    table = (twice / "rate_distortion.md").read_text()
    assert "the model 2 passes per frame" in table and "--ensemble 2`" in table
