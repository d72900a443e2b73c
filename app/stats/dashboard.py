"""What the operator's dashboard shows, gathered in one read: the storage and quality figures of
/v1/stats (the same functions, so the page and the API cannot disagree), money saved at the
configured price, per-camera projections and serving model, and the restore queue."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.config import Settings
from app.observability import repository
from app.restorations.model import RestoreModel, can_restore
from app.stats.schemas import CameraQuality, CameraUsage, QualityStats, StorageStats
from app.stats.service import quality_stats, storage_stats

GB = 1e9  # storage is priced in decimal gigabytes
PROJECTION_DAYS = 30
RECENT_JOBS = 10


@dataclass(frozen=True)
class Money:
    """What the bytes the archive does not keep would cost per month at the configured price."""

    price_per_gb_month: float
    currency: str
    saved_bytes: int  # uploaded - stored - cache (negative when the archive costs more)

    @property
    def saved_per_month(self) -> float:
        """Rounded to cents (+ 0.0: a loss of less than a cent shows as 0.00, not -0.00)."""
        return round(self.saved_bytes / GB * self.price_per_gb_month, 2) + 0.0


@dataclass(frozen=True)
class CameraRow:
    usage: CameraUsage
    quality: CameraQuality | None
    capture_days: int
    serving_model: str | None  # None: the model was not trained for how this camera is stored

    @property
    def camera_id(self) -> str:
        return self.usage.camera_id

    @property
    def versus_recompression(self) -> tuple[str, str]:
        """The archive against the whole frame recompressed with WebP at equal bytes, in words,
        and the verdict ("wins", "loses" or "not-measured")."""
        q = self.quality
        if q is None or q.beats_recompression is None:
            return "not measured", "not-measured"
        verdict = "wins" if q.beats_recompression else "loses"
        if q.recompression_gain_db is None:
            return "no WebP frame that small: wins by size", verdict
        return f"{q.recompression_gain_db:+.1f} dB, {verdict}", verdict

    @property
    def growth_bytes(self) -> int:
        """Stored bytes added in PROJECTION_DAYS at this camera's mean daily rate (what the
        dashboard shows where no retention or quota bounds the camera's storage)."""
        per_day = self.usage.bytes_stored / max(self.capture_days, 1)
        return round(per_day * PROJECTION_DAYS)


@dataclass(frozen=True)
class JobRow:
    id: str
    state: str
    method: str
    total: int
    done: int
    failed: int
    requested_by: str
    created_at: dt.datetime
    waited_s: float | None  # created to started; None while it has not started
    error: str | None


@dataclass(frozen=True)
class Dashboard:
    storage: StorageStats
    quality: QualityStats
    bytes_frames: int  # the small stored frames
    bytes_references: int  # HR references of the audit sample
    bytes_originals: int  # uploads kept unchanged (originals window, legal holds)
    money: Money
    cameras: list[CameraRow]
    quality_by_day: dict[str, list[tuple[dt.date, int, float, float]]]
    jobs_by_state: dict[str, int]
    job_frames_by_state: dict[str, int]
    recent_jobs: list[JobRow]
    queue_pending: int | None


def build_dashboard(
    *, session: Session, restorer: RestoreModel, settings: Settings, queue_pending: int | None
) -> Dashboard:
    storage = storage_stats(session=session, days=90, settings=settings)
    quality = quality_stats(session=session, restorer=restorer)
    _, sizes = repository.archive_bytes(session)
    totals = storage.totals
    money = Money(
        price_per_gb_month=settings.storage_price_per_gb_month,
        currency=settings.storage_price_currency,
        saved_bytes=totals.bytes_uploaded - totals.bytes_stored - totals.bytes_cache,
    )
    days = repository.capture_days_by_camera(session)
    degradations = repository.degradations_by_camera(session)
    measured = {q.camera_id: q for q in quality.cameras}
    cameras = [
        CameraRow(
            usage=usage,
            quality=measured.get(usage.camera_id),
            capture_days=days.get(usage.camera_id, 0),
            serving_model=restorer.name
            if all(can_restore(restorer, d) for d in degradations.get(usage.camera_id, []))
            else None,
        )
        for usage in storage.cameras
    ]
    recent = [
        JobRow(
            id=job.id,
            state=job.state,
            method=job.method,
            total=total,
            done=done,
            failed=failed,
            requested_by=job.requested_by,
            created_at=job.created_at,
            waited_s=(job.started_at - job.created_at).total_seconds() if job.started_at else None,
            error=job.error,
        )
        for job, total, done, failed in repository.recent_jobs(session, RECENT_JOBS)
    ]
    return Dashboard(
        storage=storage,
        quality=quality,
        bytes_frames=sizes["stored"],
        bytes_references=sizes["references"],
        bytes_originals=sum(camera.bytes_originals for camera in storage.cameras),
        money=money,
        cameras=cameras,
        quality_by_day=repository.quality_by_camera_day(session, restorer.weights_sha256),
        jobs_by_state=repository.jobs_by_state(session),
        job_frames_by_state=repository.job_frames_by_state(session),
        recent_jobs=recent,
        queue_pending=queue_pending,
    )
