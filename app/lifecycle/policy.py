"""A camera's policy in force: its overrides over the archive-wide defaults (CCTV_RETENTION_DAYS,
CCTV_ORIGINALS_HOURS). Ingest asks it whether to keep the upload's own bytes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.config import Settings
from app.lifecycle.models import CameraPolicy


@dataclass(frozen=True)
class Policy:
    retention_days: int  # 0: keep forever
    quota_bytes: int | None  # None: no quota
    originals_hours: int  # 0: keep no originals


def in_force(override: CameraPolicy | None, settings: Settings) -> Policy:
    """The policy a camera lives under: each field its override, else the archive's default."""
    if override is None:
        return Policy(settings.retention_days, None, settings.originals_hours)
    return Policy(
        retention_days=(
            settings.retention_days if override.retention_days is None else override.retention_days
        ),
        quota_bytes=override.quota_bytes,
        originals_hours=(
            settings.originals_hours
            if override.originals_hours is None
            else override.originals_hours
        ),
    )


def camera_policy(session: Session, camera_id: str, settings: Settings) -> Policy:
    return in_force(session.get(CameraPolicy, camera_id), settings)
