"""The restoration model: loading it, what the service needs of it, and which frames it may
restore (the compatibility check lives beside the loader so both speak of the same model)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np

from app.config import Settings
from app.errors import ModelIncompatible
from app.frames.models import Frame
from app.restorations.provenance import Method
from models import Profile, Restorer
from models.degradation import same_pixels
from models.registry import model_for_profile


class RestoreModel(Protocol):
    """What the service uses of a model: a `models.Restorer`, or the one-thread owner of it
    (`BatchingRestorer`) that every caller in a process shares."""

    @property
    def name(self) -> str: ...
    @property
    def weights_sha256(self) -> str: ...
    @property
    def degradation_id(self) -> str: ...
    @property
    def scale(self) -> int: ...
    @property
    def device(self) -> object: ...
    @property
    def engine(self) -> str: ...

    def restore(self, frames: list[np.ndarray]) -> list[np.ndarray]: ...


def load_restorer(settings: Settings) -> Restorer:
    """The model named by CCTV_MODEL (a shipped name or a .safetensors path), else the shipped
    model trained for CCTV_PROFILE, running CCTV_RESTORE_BATCH_SIZE frames per forward pass and
    CCTV_RESTORE_ENSEMBLE passes per frame.
    Raises LookupError when no shipped model fits the profile."""
    options = {
        "device": settings.model_device,
        "batch_size": settings.restore_batch_size,
        "engine": settings.restore_engine,
        "ensemble": settings.restore_ensemble,
        "calibration": settings.restore_calibration_dir,
    }
    if settings.model:
        return Restorer.from_pretrained(settings.model, **options)
    chosen = model_for_profile(Profile.parse(settings.profile))
    return Restorer.from_pretrained(str(chosen.path), **options)


def can_restore(model: RestoreModel, degradation_id: str) -> bool:
    """True if the model was trained on frames degraded exactly like these (same pixels)."""
    return same_pixels(model.degradation_id, degradation_id)


def check_profile(model: RestoreModel, degradation_id: str) -> None:
    """Refuse to start a service whose new frames its model was not trained to restore."""
    if not can_restore(model, degradation_id):
        raise RuntimeError(
            f"model {model.name!r} was trained on frames degraded as "
            f"{model.degradation_id!r}, but the ingest profile stores {degradation_id!r}; "
            "set CCTV_PROFILE to match the model, or CCTV_MODEL to a model trained for it"
        )


def check_restorable(frames: Iterable[Frame], method: Method, model: RestoreModel) -> None:
    """ModelIncompatible (409) unless the model was trained for how every frame is stored;
    bicubic restores anything."""
    if method is Method.bicubic:
        return
    wrong = [frame for frame in frames if not can_restore(model, frame.degradation_id)]
    if wrong:
        raise ModelIncompatible(
            f"model {model.name!r} was trained on frames stored as "
            f"{model.degradation_id!r}; frame {wrong[0].id} is stored as "
            f"{wrong[0].degradation_id!r} (use method=bicubic, or a model trained for it)"
        )
