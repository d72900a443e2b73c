"""The service loads the shipped model trained for its profile, named profiles included, and
refuses a profile no shipped model was trained for."""

from __future__ import annotations

from typing import Any

import pytest

from app.restorations.model import load_restorer
from models.checkpoint import file_sha256
from models.degradation import Profile
from models.registry import NoModelForProfile
from models.restorer import WEIGHTS_DIR


@pytest.mark.parametrize(
    ("profile", "model"),
    [
        ("evidence", "default"),
        ("400:2:webp-lossless", "default"),
        ("balanced", "webp-q90"),
        ("compact", "avif-q50"),
        ("native:2:webp-lossless", "native"),
    ],
)
def test_each_profile_is_served_by_the_model_trained_for_it(
    settings_with: Any, profile: str, model: str
) -> None:
    restorer = load_restorer(settings_with(profile=profile, model="", restore_engine="torch"))
    assert restorer.weights_sha256 == file_sha256(WEIGHTS_DIR / f"{model}.safetensors")
    assert restorer.degradation_id == Profile.parse(profile).degradation_id


def test_a_lossy_profile_without_its_model_is_refused(settings_with: Any) -> None:
    with pytest.raises(NoModelForProfile, match="400:2:avif-q60"):
        load_restorer(settings_with(profile="400:2:avif-q60", model="", restore_engine="torch"))
