"""SQL for the lifecycle: policies, what is held, what expired, deleting frames, holds, exports."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.auth.models import AuditLogEntry
from app.frames.models import Frame
from app.lifecycle.models import CameraPolicy, EvidenceExport, LegalHold, LegalHoldFrame
from app.restorations.models import CachedRestoration, RestoreJobItem
from app.stats.models import FrameQuality

# One lock for retention, compaction and hold changes on PostgreSQL: a hold committed while a
# sweep is choosing frames is seen by that sweep (it waits for the lock).
_LIFECYCLE_LOCK = 0x11FEC7C1E
ORIGINAL_BYTES = sa.case((Frame.original_key.is_not(None), Frame.original_bytes), else_=0)


def lock(session: Session) -> None:
    """Serialise with every other lifecycle change until this transaction ends."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(_LIFECYCLE_LOCK)))
    elif dialect == "sqlite":  # takes SQLite's one write lock now, not at the first delete
        session.execute(sa.text("UPDATE camera_policies SET camera_id = camera_id WHERE 0"))


# -- policies and cameras -------------------------------------------------------------------


def policy(session: Session, camera_id: str) -> CameraPolicy | None:
    return session.get(CameraPolicy, camera_id)


def policies(session: Session) -> dict[str, CameraPolicy]:
    return {p.camera_id: p for p in session.scalars(sa.select(CameraPolicy))}


def camera_known(session: Session, camera_id: str) -> bool:
    has_frames = sa.select(Frame.id).where(Frame.camera_id == camera_id).exists()
    return bool(session.scalar(sa.select(has_frames))) or policy(session, camera_id) is not None


CameraSums = tuple[int, int, int, datetime | None, datetime | None]


def usage_by_camera(session: Session) -> dict[str, CameraSums]:
    """Per camera: frames, bytes kept (stored + references + originals), originals' bytes,
    oldest and newest capture time."""
    rows = session.execute(
        sa.select(
            Frame.camera_id,
            sa.func.count(Frame.id),
            sa.func.coalesce(
                sa.func.sum(Frame.stored_bytes + Frame.reference_bytes + ORIGINAL_BYTES), 0
            ),
            sa.func.coalesce(sa.func.sum(ORIGINAL_BYTES), 0),
            sa.func.min(Frame.captured_at),
            sa.func.max(Frame.captured_at),
        ).group_by(Frame.camera_id)
    )
    return {
        camera: (int(n), int(kept), int(originals), _aware(oldest), _aware(newest))
        for camera, n, kept, originals, oldest, newest in rows
    }


def _aware(moment: datetime | None) -> datetime | None:
    """Aggregates skip the column's type: min/max come back naive (UTC) on SQLite."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def kept_since(session: Session, since: datetime) -> dict[str, tuple[int, int]]:
    """Per camera: bytes kept (stored + references) and originals' bytes of frames ingested
    since `since` (the recent daily rate)."""
    rows = session.execute(
        sa.select(
            Frame.camera_id,
            sa.func.coalesce(sa.func.sum(Frame.stored_bytes + Frame.reference_bytes), 0),
            sa.func.coalesce(sa.func.sum(Frame.original_bytes), 0),
        )
        .where(Frame.created_at >= since)
        .group_by(Frame.camera_id)
    )
    return {camera: (int(kept), int(originals)) for camera, kept, originals in rows}


def camera_ids(session: Session) -> list[str]:
    with_frames = set(session.scalars(sa.select(Frame.camera_id).distinct()))
    return sorted(with_frames | set(policies(session)))


# -- holds ----------------------------------------------------------------------------------


def held() -> sa.ColumnElement[bool]:
    """True for a frame an active hold covers: named by one, or inside a held camera's range."""
    named = (
        sa.select(LegalHoldFrame.frame_id)
        .join(LegalHold, LegalHold.id == LegalHoldFrame.hold_id)
        .where(LegalHoldFrame.frame_id == Frame.id, LegalHold.released_at.is_(None))
        .exists()
    )
    in_range = (
        sa.select(LegalHold.id)
        .where(
            LegalHold.released_at.is_(None),
            LegalHold.camera_id == Frame.camera_id,
            sa.or_(LegalHold.start.is_(None), Frame.captured_at >= LegalHold.start),
            sa.or_(LegalHold.end.is_(None), Frame.captured_at < LegalHold.end),
        )
        .exists()
    )
    return sa.or_(named, in_range)


def held_ids(session: Session, frame_ids: list[str]) -> set[str]:
    if not frame_ids:
        return set()
    query = sa.select(Frame.id).where(Frame.id.in_(frame_ids), held())
    return set(session.scalars(query))


def get_hold(session: Session, hold_id: str) -> LegalHold | None:
    return session.get(LegalHold, hold_id)


def holds(session: Session, *, active_only: bool) -> list[LegalHold]:
    query = sa.select(LegalHold).order_by(LegalHold.created_at, LegalHold.id)
    if active_only:
        query = query.where(LegalHold.released_at.is_(None))
    return list(session.scalars(query))


def hold_frame_ids(session: Session, hold_id: str) -> list[str]:
    query = sa.select(LegalHoldFrame.frame_id).where(LegalHoldFrame.hold_id == hold_id)
    return list(session.scalars(query.order_by(LegalHoldFrame.frame_id)))


def frames_in_hold(session: Session, hold: LegalHold) -> int:
    """How many frames the hold covers now."""
    if hold.camera_id is None:
        query = sa.select(sa.func.count()).where(LegalHoldFrame.hold_id == hold.id)
        return int(session.scalar(query) or 0)
    query = sa.select(sa.func.count(Frame.id)).where(Frame.camera_id == hold.camera_id)
    if hold.start is not None:
        query = query.where(Frame.captured_at >= hold.start)
    if hold.end is not None:
        query = query.where(Frame.captured_at < hold.end)
    return int(session.scalar(query) or 0)


# -- what goes ------------------------------------------------------------------------------


def expired_frames(session: Session, camera_id: str, cutoff: datetime, limit: int) -> list[Frame]:
    """The camera's oldest unheld frames captured before `cutoff`."""
    query = sa.select(Frame).where(
        Frame.camera_id == camera_id, Frame.captured_at < cutoff, sa.not_(held())
    )
    return list(session.scalars(query.order_by(Frame.captured_at, Frame.id).limit(limit)))


def oldest_unheld(session: Session, camera_id: str, limit: int) -> list[Frame]:
    query = sa.select(Frame).where(Frame.camera_id == camera_id, sa.not_(held()))
    return list(session.scalars(query.order_by(Frame.captured_at, Frame.id).limit(limit)))


def expired_originals(
    session: Session, camera_id: str, ingested_before: datetime, limit: int
) -> list[Frame]:
    """The camera's unheld frames whose original is kept and was ingested before the cutoff."""
    query = sa.select(Frame).where(
        Frame.camera_id == camera_id,
        Frame.original_key.is_not(None),
        Frame.created_at < ingested_before,
        sa.not_(held()),
    )
    return list(session.scalars(query.order_by(Frame.created_at, Frame.id).limit(limit)))


def cache_keys(session: Session, frame_ids: list[str]) -> list[str]:
    query = sa.select(CachedRestoration.blob_key).where(CachedRestoration.frame_id.in_(frame_ids))
    return list(session.scalars(query))


def delete_frames(session: Session, frame_ids: list[str]) -> None:
    """Delete the frames' rows and every row that refers to them (cache entries, job items,
    quality measurements; hold links and first-frame claims cascade)."""
    for table, column in (
        (CachedRestoration, CachedRestoration.frame_id),
        (RestoreJobItem, RestoreJobItem.frame_id),
        (FrameQuality, FrameQuality.frame_id),
        (LegalHoldFrame, LegalHoldFrame.frame_id),
    ):
        session.execute(sa.delete(table).where(column.in_(frame_ids)))
    session.execute(sa.delete(Frame).where(Frame.id.in_(frame_ids)))


def kept_blob_keys(session: Session) -> set[str]:
    """The keys of kept originals and export bundles (for `verify`: not orphans)."""
    originals = session.scalars(
        sa.select(Frame.original_key).where(Frame.original_key.is_not(None))
    )
    bundles = session.scalars(
        sa.select(EvidenceExport.blob_key).where(EvidenceExport.blob_key.is_not(None))
    )
    return {key for key in [*originals, *bundles] if key}


def drop_original(session: Session, frame_id: str) -> None:
    session.execute(sa.update(Frame).where(Frame.id == frame_id).values(original_key=None))


# -- exports --------------------------------------------------------------------------------


def get_export(session: Session, export_id: str) -> EvidenceExport | None:
    return session.get(EvidenceExport, export_id)


def expired_exports(
    session: Session, finished_before: datetime, limit: int
) -> list[EvidenceExport]:
    """Finished exports whose bundle is past its time, oldest first."""
    query = sa.select(EvidenceExport).where(
        EvidenceExport.state == "done", EvidenceExport.finished_at < finished_before
    )
    return list(session.scalars(query.order_by(EvidenceExport.finished_at).limit(limit)))


def audit_trail(session: Session, frame_ids: list[str]) -> list[AuditLogEntry]:
    query = sa.select(AuditLogEntry).where(AuditLogEntry.frame_id.in_(frame_ids))
    return list(session.scalars(query.order_by(AuditLogEntry.id)))


def audit_page(
    session: Session,
    *,
    frame_id: str | None,
    key_name: str | None,
    action: str | None,
    start: datetime | None,
    end: datetime | None,
    after_id: int | None,
    limit: int,
) -> list[AuditLogEntry]:
    query = sa.select(AuditLogEntry)
    if frame_id is not None:
        query = query.where(AuditLogEntry.frame_id == frame_id)
    if key_name is not None:
        query = query.where(AuditLogEntry.key_name == key_name)
    if action is not None:
        query = query.where(AuditLogEntry.action == action)
    if start is not None:
        query = query.where(AuditLogEntry.at >= start)
    if end is not None:
        query = query.where(AuditLogEntry.at < end)
    if after_id is not None:
        query = query.where(AuditLogEntry.id > after_id)
    return list(session.scalars(query.order_by(AuditLogEntry.id).limit(limit)))
