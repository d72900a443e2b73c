"""SQL for storage accounting (aggregates in the database, never row by row in Python)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.frames.models import Frame
from app.restorations.models import CachedRestoration
from app.stats.models import FrameQuality

Totals = tuple[int, int, int]  # frames, bytes uploaded, bytes stored
KEPT_ORIGINAL_BYTES = sa.case((Frame.original_key.is_not(None), Frame.original_bytes), else_=0)


def _frame_sums() -> list[sa.ColumnElement[int]]:
    return [
        sa.func.count(Frame.id),
        sa.func.coalesce(sa.func.sum(Frame.original_bytes), 0),
        # Kept originals (the originals window, legal holds) are stored bytes too.
        sa.func.coalesce(
            sa.func.sum(Frame.stored_bytes + Frame.reference_bytes + KEPT_ORIGINAL_BYTES), 0
        ),
    ]


def frames_by_camera(session: Session) -> dict[str, Totals]:
    rows = session.execute(sa.select(Frame.camera_id, *_frame_sums()).group_by(Frame.camera_id))
    return {camera: (int(n), int(up), int(kept)) for camera, n, up, kept in rows}


def cache_by_camera(session: Session) -> dict[str, int]:
    rows = session.execute(
        sa.select(Frame.camera_id, sa.func.sum(CachedRestoration.bytes))
        .join(Frame, Frame.id == CachedRestoration.frame_id)
        .group_by(Frame.camera_id)
    )
    return {camera: int(size or 0) for camera, size in rows}


def _day() -> sa.ColumnElement[str]:
    return sa.func.date(Frame.captured_at)


def frames_by_day(session: Session, days: int) -> dict[str, Totals]:
    """The `days` most recent capture dates that have frames."""
    day = _day().label("day")
    rows = session.execute(
        sa.select(day, *_frame_sums()).group_by(day).order_by(day.desc()).limit(days)
    )
    return {str(d): (int(n), int(up), int(kept)) for d, n, up, kept in rows}


def cache_by_day(session: Session, days: list[str]) -> dict[str, int]:
    if not days:
        return {}
    day = _day().label("day")
    rows = session.execute(
        sa.select(day, sa.func.sum(CachedRestoration.bytes))
        .join(Frame, Frame.id == CachedRestoration.frame_id)
        .where(Frame.captured_at >= dt.datetime.fromisoformat(min(days)).replace(tzinfo=dt.UTC))
        .group_by(day)
    )
    return {str(d): int(size or 0) for d, size in rows}


def quality_by_camera(session: Session, weights_sha256: str) -> dict[str, tuple[int, float, float]]:
    """Per camera: frames measured, mean PSNR-Y of the model and of bicubic."""
    rows = session.execute(
        sa.select(
            Frame.camera_id,
            sa.func.count(),
            sa.func.avg(FrameQuality.psnr_y_edsr),
            sa.func.avg(FrameQuality.psnr_y_bicubic),
        )
        .join(Frame, Frame.id == FrameQuality.frame_id)
        .where(FrameQuality.weights_sha256 == weights_sha256)
        .group_by(Frame.camera_id)
    )
    return {camera: (int(n), float(edsr), float(bic)) for camera, n, edsr, bic in rows}


Recompression = tuple[int, float | None, float | None, int]


def recompression_by_camera(session: Session, weights_sha256: str) -> dict[str, Recompression]:
    """Per camera, against the whole frame recompressed with WebP at the same bytes: frames
    compared (a WebP frame fitted), the model's and the WebP frame's mean PSNR-Y over those same
    frames, and frames for which no WebP frame was that small."""
    compared = FrameQuality.psnr_y_recompressed.is_not(None)
    no_fit = sa.and_(FrameQuality.recompressed_bytes.is_not(None), ~compared)
    rows = session.execute(
        sa.select(
            Frame.camera_id,
            sa.func.count(FrameQuality.psnr_y_recompressed),
            sa.func.avg(sa.case((compared, FrameQuality.psnr_y_edsr))),
            sa.func.avg(FrameQuality.psnr_y_recompressed),
            sa.func.coalesce(sa.func.sum(sa.case((no_fit, 1), else_=0)), 0),
        )
        .join(Frame, Frame.id == FrameQuality.frame_id)
        .where(FrameQuality.weights_sha256 == weights_sha256)
        .group_by(Frame.camera_id)
    )
    return {
        camera: (
            int(n),
            None if edsr is None else float(edsr),
            None if webp is None else float(webp),
            int(none_fit),
        )
        for camera, n, edsr, webp, none_fit in rows
    }


def unmeasured_frames(
    session: Session, weights_sha256: str, degradations: list[str], limit: int
) -> list[Frame]:
    """Newest audit-sample frames stored as one of `degradations` and not yet measured with the
    model whose weights are `weights_sha256` (or measured without the whole-frame WebP
    comparison)."""
    measured = sa.select(FrameQuality.frame_id).where(
        FrameQuality.frame_id == Frame.id,
        FrameQuality.weights_sha256 == weights_sha256,
        # Rows from before migration 0008 lack the whole-frame WebP comparison: measured again.
        FrameQuality.recompressed_bytes.is_not(None),
    )
    query = (
        sa.select(Frame)
        .where(
            Frame.reference_key.is_not(None),
            Frame.degradation_id.in_(degradations),
            ~measured.exists(),
        )
        .order_by(Frame.created_at.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def save_quality(session: Session, row: FrameQuality) -> None:
    """Record (or replace) one frame's measurement with one model, in one statement: of two
    server processes measuring the same frame at once, the later one replaces the earlier."""
    table = FrameQuality.__table__
    values = {column.name: getattr(row, column.name) for column in table.columns}
    keys = [column.name for column in table.primary_key]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    insert = dialect.insert(table).values(values)
    replace = {name: insert.excluded[name] for name in values if name not in keys}
    session.execute(insert.on_conflict_do_update(index_elements=keys, set_=replace))
