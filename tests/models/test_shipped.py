"""The shipped model: present, loadable strictly, trained for the default profile, and better
than bicubic on camera frames it never saw in training."""

from pathlib import Path

import numpy as np

from models.degradation import Profile, same_pixels
from models.evaluate import evaluate
from models.restorer import WEIGHTS_DIR, Restorer


def test_the_default_model_ships_with_its_card() -> None:
    assert (WEIGHTS_DIR / "default.safetensors").is_file()
    card = (WEIGHTS_DIR / "MODEL_CARD.md").read_text()
    restorer = Restorer.from_pretrained("default")
    assert restorer.weights_sha256 in card  # the card describes these very weights
    assert restorer.degradation_id in card


def test_the_default_model_matches_the_default_profile() -> None:
    restorer = Restorer.from_pretrained("default")
    assert same_pixels(restorer.degradation_id, Profile().degradation_id)
    assert restorer.scale == Profile().scale
    out = restorer.restore([np.zeros((200, 200, 3), dtype=np.uint8)])[0]
    assert out.shape == (400, 400, 3)


def test_the_default_model_beats_bicubic_on_validation_cameras(shared_data: Path) -> None:
    # One validation camera (19 frames) keeps this a few seconds; the card has the full set.
    _, totals = evaluate(
        Restorer.from_pretrained("default"), shared_data / "cctv" / "val" / "cam-test20", Profile()
    )
    assert totals["psnr_y"] > totals["psnr_y_bicubic"] + 2.0
    assert totals["ssim"] > totals["ssim_bicubic"]
