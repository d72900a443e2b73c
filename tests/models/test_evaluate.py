from pathlib import Path

import pytest

from models.degradation import Profile
from models.edsr import EDSRConfig
from models.evaluate import evaluate
from models.restorer import Restorer


def test_set5_bicubic_reproduces_the_published_figure(shared_data: Path) -> None:
    """The protocol check: bicubic x2 on Set5 is 33.66 dB PSNR-Y in the published tables."""
    _, totals = evaluate(None, shared_data / "benchmarks" / "Set5", Profile.parse("benchmark"))
    assert totals["psnr_y_bicubic"] == pytest.approx(33.66, abs=0.1)


def test_set14_bicubic_reproduces_the_published_figure(shared_data: Path) -> None:
    _, totals = evaluate(None, shared_data / "benchmarks" / "Set14", Profile.parse("benchmark"))
    assert totals["psnr_y_bicubic"] == pytest.approx(30.24, abs=0.1)


def test_model_and_bicubic_are_scored_on_the_same_images(image_folder: Path) -> None:
    restorer = Restorer.from_config(EDSRConfig(n_resblocks=1, n_feats=4))
    scores, totals = evaluate(restorer, image_folder, Profile())
    assert [s.image for s in scores] == ["cam-1/000.png", "cam-1/001.png", "cam-1/002.png"]
    assert totals["psnr_y_bicubic"] == pytest.approx(sum(s.psnr_y_bicubic for s in scores) / 3)
    # An untrained network is far worse than bicubic: the columns are not swapped or shared.
    assert totals["psnr_y"] < totals["psnr_y_bicubic"] - 3
