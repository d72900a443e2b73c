import json
from pathlib import Path

import pytest

from models.checkpoint import save_model
from models.cli import main as cli
from models.degradation import Profile
from models.edsr import EDSR, EDSRConfig
from models.registry import NoModelForProfile, model_for_profile, ship, shipped_models, table
from models.restorer import WEIGHTS_DIR


def write_model(folder: Path, stem: str, profile: str | None, feats: int = 8) -> Path:
    extra = {"val": {"val": 30.5, "val-night": 32.0}, "val_bicubic_psnr_y": {"val": 28.0}}
    if profile:
        extra["profile"] = profile
    codec = (profile or "400:2:webp-lossless").split(":")[2]
    path = folder / f"{stem}.safetensors"
    save_model(
        path,
        EDSR(EDSRConfig(n_resblocks=1, n_feats=feats)),
        name=f"title-{stem}",
        degradation_id=f"bicubic-aa-x2/{codec}/v1",
        extra=extra,
    )
    return path


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    write_model(tmp_path, "native", "native:2:webp-lossless")
    write_model(tmp_path, "webp-q90", "400:2:webp-q90")
    write_model(tmp_path, "default", None)  # written before profiles were recorded
    return tmp_path


def test_each_profile_gets_the_model_trained_for_it(weights: Path) -> None:
    assert model_for_profile("400:2:webp-lossless", weights).name == "default"
    # PNG and WebP lossless store the same pixels: the same model serves both.
    assert model_for_profile("400:2:png", weights).name == "default"
    assert model_for_profile("native:2:webp-lossless", weights).name == "native"
    assert model_for_profile(Profile.parse("400:2:webp-q90"), weights).name == "webp-q90"


@pytest.mark.parametrize("profile", ["400:2:jpeg-q90", "400:2:webp-q80", "native:2:webp-q90"])
def test_a_profile_no_model_was_trained_for_is_refused_with_what_is_shipped(
    weights: Path, profile: str
) -> None:
    with pytest.raises(NoModelForProfile) as caught:
        model_for_profile(profile, weights)
    message = str(caught.value)
    assert f"profile {profile}" in message
    assert (
        "native (native:2:webp-lossless)" in message and "default (400:2:webp-lossless)" in message
    )
    assert "CCTV_MODEL" in message


def test_the_listing_has_name_profile_size_parameters_and_figures(weights: Path) -> None:
    models = shipped_models(weights)
    assert [m.name for m in models] == ["default", "native", "webp-q90"]
    default = models[0]
    assert default.parameters == sum(p.numel() for p in EDSR(default.config).parameters())
    assert default.validation == {"val": 30.5, "val-night": 32.0}
    assert default.validation_gain == {"val": pytest.approx(2.5)}
    text = table(models)
    assert text.splitlines()[0].split()[:5] == ["name", "profile", "degradation", "size", "params"]
    assert "val 30.50 (+2.50), val-night 32.00" in text


def test_models_command_lists_what_is_shipped(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {row["name"] for row in rows}
    assert names == {p.stem for p in WEIGHTS_DIR.glob("*.safetensors")}
    assert "default" in names
    for row in rows:
        assert row["size_bytes"] > 0 and row["parameters"] > 0
        assert Profile.parse(row["profile"])  # a profile the service can be given
    assert cli(["models"]) == 0
    assert "default" in capsys.readouterr().out


def test_ship_records_the_profile_and_refuses_a_contradicting_one(tmp_path: Path) -> None:
    source = write_model(tmp_path, "trained", None)  # header without a profile, webp-lossless
    with pytest.raises(ValueError, match="does not record its profile"):
        ship(source, "x", weights_dir=tmp_path)
    with pytest.raises(ValueError, match="not profile 400:2:jpeg-q90"):
        ship(source, "x", profile="400:2:jpeg-q90", weights_dir=tmp_path)
    shipped = ship(source, "native", profile="native:2:webp-lossless", weights_dir=tmp_path)
    assert shipped.profile == "native:2:webp-lossless"
    assert model_for_profile("native:2:png", tmp_path).name == "native"
    with pytest.raises(ValueError, match="trained for profile native:2:webp-lossless, not 400"):
        ship(shipped.path, "again", profile="400:2:webp-lossless", weights_dir=tmp_path)
