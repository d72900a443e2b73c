"""A camera's policy in force: its overrides over the archive-wide defaults (CCTV_RETENTION_DAYS,
CCTV_ORIGINALS_HOURS). Ingest asks `originals_hours` whether to keep the upload's own bytes."""

from __future__ import annotations

from dataclasses import dataclass

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
        originals_hours=originals_hours(override.originals_hours, settings),
    )


def originals_hours(override: int | None, settings: Settings) -> int:
    """How long a camera's uploads are kept unchanged: its override, else the default."""
    return settings.originals_hours if override is None else override
