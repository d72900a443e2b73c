"""Storage accounting, per camera and per capture day."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from app.db import utcnow
from app.stats import repository
from app.stats.schemas import CameraUsage, DailyUsage, StorageStats, Usage


def storage_stats(*, session: Session, days: int = 90) -> StorageStats:
    cameras = repository.frames_by_camera(session)
    cache = repository.cache_by_camera(session)
    by_day = repository.frames_by_day(session, days)
    cache_daily = repository.cache_by_day(session, list(by_day))
    totals = [sum(values) for values in zip(*cameras.values(), strict=True)] or [0, 0, 0]
    return StorageStats(
        totals=Usage.of(*totals, sum(cache.values())),
        cameras=[
            CameraUsage(camera_id=camera, **Usage.of(*sums, cache.get(camera, 0)).model_dump())
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
