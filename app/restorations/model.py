"""Loading the restoration model, and whether it may restore a given stored frame."""

from __future__ import annotations

from app.config import Settings
from models import Profile, Restorer
from models.degradation import same_pixels
from models.registry import model_for_profile


def load_restorer(settings: Settings) -> Restorer:
    """The model named by CCTV_MODEL (a shipped name or a .safetensors path), else the shipped
    model trained for CCTV_PROFILE; loaded once. Raises LookupError when none was."""
    if settings.model:
        return Restorer.from_pretrained(settings.model, device=settings.model_device)
    chosen = model_for_profile(Profile.parse(settings.profile))
    return Restorer.from_pretrained(str(chosen.path), device=settings.model_device)


def can_restore(restorer: Restorer, degradation_id: str) -> bool:
    """True if the model was trained on frames degraded exactly like these (same pixels)."""
    return same_pixels(restorer.degradation_id, degradation_id)


def check_profile(restorer: Restorer, degradation_id: str) -> None:
    """Refuse to start a service whose new frames its model was not trained to restore."""
    if not can_restore(restorer, degradation_id):
        raise RuntimeError(
            f"model {restorer.name!r} was trained on frames degraded as "
            f"{restorer.degradation_id!r}, but the ingest profile stores {degradation_id!r}; "
            "set CCTV_PROFILE to match the model, or CCTV_MODEL to a model trained for it"
        )
