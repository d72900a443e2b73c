"""SQL that the dashboard and /metrics read: bytes kept by kind, restore jobs and their frames by
state, capture days per camera, and audit-sample quality per camera and capture day."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.frames.models import Frame
from app.restorations.models import CachedRestoration, RestoreJob, RestoreJobItem
from app.stats.models import FrameQuality

JOB_STATES = ("queued", "running", "done", "failed")
ITEM_STATES = ("pending", "done", "failed")


def archive_bytes(session: Session) -> tuple[int, dict[str, int]]:
    """Frames, and bytes: uploaded, stored (frames), references (audit sample), cache."""
    frames, uploaded, stored, references = session.execute(
        sa.select(
            sa.func.count(Frame.id),
            sa.func.coalesce(sa.func.sum(Frame.original_bytes), 0),
            sa.func.coalesce(sa.func.sum(Frame.stored_bytes), 0),
            sa.func.coalesce(sa.func.sum(Frame.reference_bytes), 0),
        )
    ).one()
    cache = session.scalar(sa.select(sa.func.coalesce(sa.func.sum(CachedRestoration.bytes), 0)))
    sizes = {"uploaded": uploaded, "stored": stored, "references": references, "cache": cache}
    return int(frames), {kind: int(value or 0) for kind, value in sizes.items()}


def jobs_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(
        sa.select(RestoreJob.state, sa.func.count()).group_by(RestoreJob.state)
    ).all()
    counts = dict.fromkeys(JOB_STATES, 0)
    counts.update({state: int(n) for state, n in rows})
    return counts


def job_frames_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(
        sa.select(RestoreJobItem.state, sa.func.count()).group_by(RestoreJobItem.state)
    ).all()
    counts = dict.fromkeys(ITEM_STATES, 0)
    counts.update({state: int(n) for state, n in rows})
    return counts


def recent_jobs(session: Session, limit: int) -> list[tuple[RestoreJob, int, int, int]]:
    """The newest jobs with their frames: (job, total, done, failed)."""
    jobs = list(
        session.scalars(sa.select(RestoreJob).order_by(RestoreJob.created_at.desc()).limit(limit))
    )
    if not jobs:
        return []
    rows = session.execute(
        sa.select(RestoreJobItem.job_id, RestoreJobItem.state, sa.func.count())
        .where(RestoreJobItem.job_id.in_([job.id for job in jobs]))
        .group_by(RestoreJobItem.job_id, RestoreJobItem.state)
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for job_id, state, n in rows:
        counts.setdefault(job_id, {})[state] = int(n)
    return [
        (
            job,
            sum(counts.get(job.id, {}).values()),
            counts.get(job.id, {}).get("done", 0),
            counts.get(job.id, {}).get("failed", 0),
        )
        for job in jobs
    ]


def _day() -> sa.ColumnElement[str]:
    return sa.func.date(Frame.captured_at)


def capture_days_by_camera(session: Session) -> dict[str, int]:
    """How many distinct capture dates (UTC) each camera has frames on."""
    rows = session.execute(
        sa.select(Frame.camera_id, sa.func.count(sa.distinct(_day()))).group_by(Frame.camera_id)
    )
    return {camera: int(n) for camera, n in rows}


def quality_by_camera_day(
    session: Session, weights_sha256: str
) -> dict[str, list[tuple[dt.date, int, float, float]]]:
    """Per camera, per capture date: frames measured, mean PSNR-Y of the model and of bicubic."""
    day = _day().label("day")
    rows = session.execute(
        sa.select(
            Frame.camera_id,
            day,
            sa.func.count(),
            sa.func.avg(FrameQuality.psnr_y_edsr),
            sa.func.avg(FrameQuality.psnr_y_bicubic),
        )
        .join(Frame, Frame.id == FrameQuality.frame_id)
        .where(FrameQuality.weights_sha256 == weights_sha256)
        .group_by(Frame.camera_id, day)
        .order_by(Frame.camera_id, day)
    )
    series: dict[str, list[tuple[dt.date, int, float, float]]] = {}
    for camera, d, n, edsr, bicubic in rows:
        date = dt.date.fromisoformat(str(d)[:10])
        series.setdefault(camera, []).append((date, int(n), float(edsr), float(bicubic)))
    return series


def degradations_by_camera(session: Session) -> dict[str, list[str]]:
    """How each camera's frames are stored (usually one degradation id per camera)."""
    rows = session.execute(sa.select(Frame.camera_id, Frame.degradation_id).distinct())
    found: dict[str, list[str]] = {}
    for camera, degradation in rows:
        found.setdefault(camera, []).append(degradation)
    return found
