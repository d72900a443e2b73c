"""benchmarks/int8_recipes.py: each recipe is built, run by OpenVINO and scored on every set."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

import pytest
import torch
from PIL import Image

from models.checkpoint import save_model
from models.edsr import EDSR, EDSRConfig
from tests.benchmarks.scripts import load_script
from tests.models.conftest import scene

pytest.importorskip("openvino", reason="the int8 engines need the int8 extra")
pytest.importorskip("onnxruntime", reason="the int8 engines need the int8 extra")


@pytest.fixture(scope="module")
def recipes() -> ModuleType:
    return load_script("int8_recipes.py", "int8_recipes_bench")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    for folder, cameras, seed in (("train", ("cam-a", "cam-b"), 0), ("val", ("cam-v",), 50)):
        for camera in cameras:
            (tmp_path / folder / camera).mkdir(parents=True)
            for i in range(3):
                image = Image.fromarray(scene(120, 160, seed=seed + i + 10 * len(camera)))
                image.save(tmp_path / folder / camera / f"{i:03d}.png")
    return tmp_path


def test_every_recipe_gets_a_scored_row(recipes: ModuleType, data: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = tmp_path / "tiny.safetensors"
    network = EDSR(EDSRConfig(n_resblocks=1, n_feats=8))
    save_model(model, network, name="tiny", degradation_id="bicubic-aa-x2/webp-lossless/v1")
    args = argparse.Namespace(
        data=str(data),
        model=str(model),
        profile="400:2:webp-lossless",
        sets=["val"],
        recipes=["fp32", "per-camera", "fp32-more"],
        threads=2,
    )
    lines: list[str] = []
    rows = recipes.run(args, emit=lines.append)

    assert [row[0] for row in rows] == ["fp32", "per-camera", "fp32-more"]
    assert len(lines) == 2 + len(rows)
    assert lines[0] == "| recipe | change | val: PSNR-Y (dB) | seconds |"
    fp32, *int8 = (float(row[2]) for row in rows)
    for db in int8:  # the same weights in int8: close to fp32, not the same pixels
        assert 0 < abs(db - fp32) < 1.0
    # Per camera: 2 frames of each of the 2 training cameras.
    profile = recipes.Profile.parse("400:2:webp-lossless")
    frames = recipes.calibration_frames(data / "train", profile, recipes.RECIPES["per-camera"])
    assert len(frames) == 4 and frames[0].shape == (200, 200, 3)
