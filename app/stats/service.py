"""Storage accounting, per camera and per capture day."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from app.config import Settings
from app.db import utcnow
from app.lifecycle import service as lifecycle_service
from app.restorations.model import RestoreModel
from app.stats import repository
from app.stats.schemas import (
    CameraQuality,
    CameraUsage,
    DailyUsage,
    ModelRef,
    Quality,
    QualityStats,
    StorageStats,
    Usage,
)


def storage_stats(
    *, session: Session, days: int = 90, settings: Settings | None = None
) -> StorageStats:
    """Usage in total, per camera and per capture day; with `settings`, each camera's
    lifecycle policy in force and projected settled storage too."""
    cameras = repository.frames_by_camera(session)
    cache = repository.cache_by_camera(session)
    by_day = repository.frames_by_day(session, days)
    cache_daily = repository.cache_by_day(session, list(by_day))
    totals = [sum(values) for values in zip(*cameras.values(), strict=True)] or [0, 0, 0]
    lifecycle = _lifecycle(session, settings) if settings is not None else {}
    return StorageStats(
        totals=Usage.of(*totals, sum(cache.values())),
        cameras=[
            CameraUsage(
                camera_id=camera,
                **Usage.of(*sums, cache.get(camera, 0)).model_dump(),
                **lifecycle.get(camera, {}),
            )
            for camera, sums in sorted(cameras.items())
        ],
        daily=[
            DailyUsage(
                date=dt.date.fromisoformat(day[:10]),
                **Usage.of(*sums, cache_daily.get(day, 0)).model_dump(),
            )
            for day, sums in sorted(by_day.items())
        ],
        generated_at=utcnow(),
    )


def _lifecycle(session: Session, settings: Settings) -> dict[str, dict[str, int | None]]:
    """Per camera: its policy in force, kept originals and projected settled bytes."""
    cameras = lifecycle_service.list_cameras(session=session, settings=settings)
    return {
        camera.camera_id: {
            "bytes_originals": camera.usage.bytes_originals,
            "retention_days": camera.policy.retention_days,
            "quota_bytes": camera.policy.quota_bytes,
            "originals_hours": camera.policy.originals_hours,
            "projected_bytes": camera.projected_bytes,
        }
        for camera in cameras
    }


def quality_stats(*, session: Session, restorer: RestoreModel) -> QualityStats:
    """Restoration quality of the serving model on the audit sample, per camera."""
    cameras = repository.quality_by_camera(session, restorer.weights_sha256)
    versus = repository.recompression_by_camera(session, restorer.weights_sha256)
    frames = sum(n for n, _, _ in cameras.values())
    edsr = sum(n * e for n, e, _ in cameras.values()) / frames if frames else 0.0
    bicubic = sum(n * b for n, _, b in cameras.values()) / frames if frames else 0.0
    return QualityStats(
        model=ModelRef(name=restorer.name, weights_sha256=restorer.weights_sha256),
        totals=Quality.of(frames, edsr, bicubic, _pooled(list(versus.values()))),
        cameras=[
            CameraQuality(
                camera_id=camera,
                **Quality.of(*values, versus.get(camera, (0, None, None, 0))).model_dump(),
            )
            for camera, values in sorted(cameras.items())
        ],
    )


def _pooled(
    cameras: list[repository.Recompression],
) -> repository.Recompression:
    """The cameras' comparisons with whole-frame WebP as one, weighted by frames compared."""
    compared = sum(n for n, _, _, _ in cameras)
    no_fit = sum(none_fit for _, _, _, none_fit in cameras)
    if not compared:
        return 0, None, None, no_fit
    restored = sum(n * (r or 0.0) for n, r, _, _ in cameras) / compared
    recompressed = sum(n * (w or 0.0) for n, _, w, _ in cameras) / compared
    return compared, restored, recompressed, no_fit
