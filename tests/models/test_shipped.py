"""The shipped models: present, loadable strictly, described by the card, each trained for the
profile the registry serves it for, and better than bicubic on camera frames it never saw."""

from pathlib import Path

import numpy as np
import pytest

from models.degradation import Profile, same_pixels
from models.evaluate import evaluate
from models.registry import NoModelForProfile, model_for_profile, shipped_models
from models.restorer import WEIGHTS_DIR, Restorer


def test_every_shipped_model_is_described_by_the_card() -> None:
    card = (WEIGHTS_DIR / "MODEL_CARD.md").read_text()
    models = shipped_models()
    assert {m.name for m in models} >= {"default", "native"}
    for model in models:
        restorer = Restorer.from_pretrained(model.name)
        assert restorer.weights_sha256 in card, model.name  # the card names these very weights
        assert f"`{model.name}`" in card and model.profile in card


@pytest.mark.parametrize(
    ("name", "profile_text"),
    [
        ("default", "evidence"),
        ("default", "400:2:webp-lossless"),
        ("native", "native:2:webp-lossless"),
        ("webp-q90", "400:2:webp-q90"),
        ("webp-q90", "balanced"),
        ("avif-q50", "400:2:avif-q50"),
        ("avif-q50", "compact"),
        ("fast", "fast"),
        ("fast", "400:2:webp-lossless:draft"),
    ],
)
def test_each_profile_is_served_by_its_model(name: str, profile_text: str) -> None:
    profile = Profile.parse(profile_text)
    chosen = model_for_profile(profile)
    assert chosen.name == name
    restorer = Restorer.from_pretrained(name)
    assert same_pixels(restorer.degradation_id, profile.degradation_id)
    out = restorer.restore([np.zeros((90, 160, 3), dtype=np.uint8)])[0]
    assert out.shape == (180, 320, 3)


def test_the_default_model_beats_bicubic_on_validation_cameras(shared_data: Path) -> None:
    # One validation camera (19 frames) keeps this a few seconds; the card has the full set.
    _, totals = evaluate(
        Restorer.from_pretrained("default"), shared_data / "cctv" / "val" / "cam-test20", Profile()
    )
    assert totals["psnr_y"] > totals["psnr_y_bicubic"] + 2.0
    assert totals["ssim"] > totals["ssim_bicubic"]


def test_the_default_model_beats_bicubic_at_night(shared_data: Path, tmp_path: Path) -> None:
    night = sorted((shared_data / "cctv" / "val-night" / "sg-2702").glob("*.jpg"))[:6]
    for path in night:
        (tmp_path / path.name).symlink_to(path)
    _, totals = evaluate(Restorer.from_pretrained("default"), tmp_path, Profile())
    assert totals["psnr_y"] > totals["psnr_y_bicubic"] + 1.0


def test_the_fast_model_beats_bicubic_on_its_draft_frames_day_and_night(
    shared_data: Path, tmp_path: Path
) -> None:
    # Six frames of a day camera and six of the night one; the card has the full sets.
    day = sorted((shared_data / "cctv" / "val" / "cam-test20").glob("*.jpg"))[:6]
    night = sorted((shared_data / "cctv" / "val-night" / "sg-2702").glob("*.jpg"))[:6]
    for path in day + night:
        (tmp_path / f"{path.parent.name}-{path.name}").symlink_to(path)
    restorer = Restorer.from_pretrained("fast")
    _, totals = evaluate(restorer, tmp_path, Profile.parse("fast"))
    assert totals["psnr_y"] > totals["psnr_y_bicubic"] + 1.5


def test_the_native_model_beats_bicubic_at_native_size(shared_data: Path, tmp_path: Path) -> None:
    # Three 1280x720 frames restored from 640x360: the card has all 94.
    frames = sorted((shared_data / "cctv" / "val" / "cam-test20").glob("*.jpg"))[:3]
    for path in frames:
        (tmp_path / path.name).symlink_to(path)
    _, totals = evaluate(
        Restorer.from_pretrained("native"), tmp_path, Profile.parse("native:2:webp-lossless")
    )
    assert totals["psnr_y"] > totals["psnr_y_bicubic"] + 1.0


@pytest.mark.parametrize("profile_text", ["400:2:webp-q75", "400:2:jpeg-q90", "native:2:webp-q90"])
def test_a_lossy_profile_without_its_own_model_is_refused_not_served_by_a_neighbour(
    profile_text: str,
) -> None:
    with pytest.raises(NoModelForProfile, match="no shipped model was trained for profile"):
        model_for_profile(profile_text)


def test_each_lossy_model_beats_bicubic_on_its_own_codec(shared_data: Path, tmp_path: Path) -> None:
    # Six frames of one validation camera per model; the card has the full sets.
    frames = sorted((shared_data / "cctv" / "val" / "cam-test20").glob("*.jpg"))[:6]
    for path in frames:
        (tmp_path / path.name).symlink_to(path)
    for model in shipped_models():
        profile = Profile.parse(model.profile)
        if profile.lossless:
            continue
        _, totals = evaluate(Restorer.from_pretrained(model.name), tmp_path, profile)
        # At least half the gain its card claims on all of cctv/val (one camera varies).
        claimed = model.validation_gain["val"]
        assert totals["psnr_y"] > totals["psnr_y_bicubic"] + claimed / 2, (model.name, totals)


def test_every_shipped_model_has_a_current_int8_file() -> None:
    """So a machine with no CCTV frames to calibrate on still serves the int8 engine: each
    NAME.int8.onnx was built from NAME's very weights with the current recipe (rebuild with
    `cctv-archive models --int8 NAME` after shipping new weights)."""
    pytest.importorskip("onnx", reason="reading int8 files needs the int8 extra")
    from models import engines

    for model in shipped_models():
        int8 = engines.shipped_path(model.path)
        assert int8.is_file(), f"{int8.name} missing: cctv-archive models --int8 {model.name}"
        recorded = engines.metadata(int8)
        expected = Restorer.from_pretrained(model.name).weights_sha256
        assert recorded[engines.META_SHA256] == expected, f"{int8.name} is stale"
        assert recorded[engines.META_RECIPE] == engines.RECIPE, f"{int8.name}: old recipe"
    orphans = {p.name.removesuffix(engines.SHIPPED_SUFFIX) for p in WEIGHTS_DIR.glob("*.onnx")}
    assert orphans <= {m.name for m in shipped_models()}
