"""Cameras and their policies: list them with their usage, set a camera's overrides."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.auth.schemas import Principal
from app.auth.service import record_event, record_read
from app.config import Settings
from app.db import utcnow
from app.errors import InvalidInput
from app.frames.models import Frame
from app.frames.service import get_frame
from app.lifecycle import repository
from app.lifecycle.errors import OriginalNotKept
from app.lifecycle.models import CameraPolicy
from app.lifecycle.policy import in_force
from app.lifecycle.schemas import AuditEntryRead, AuditPage, CameraRead, PolicyRead, PolicyUpdate
from app.storage import BlobStore

# The recent daily rate a camera's settled storage is projected from.
RATE_WINDOW_DAYS = 7


def list_cameras(*, session: Session, settings: Settings) -> list[CameraRead]:
    """Every camera with frames or a policy: the policy in force, its overrides and its usage."""
    overrides = repository.policies(session)
    usage = repository.usage_by_camera(session)
    recent = repository.kept_since(session, utcnow() - timedelta(days=RATE_WINDOW_DAYS))
    cameras = []
    for camera_id in repository.camera_ids(session):
        policy = in_force(overrides.get(camera_id), settings)
        frames, kept, originals, oldest, newest = usage.get(camera_id, (0, 0, 0, None, None))
        kept_recent, originals_recent = recent.get(camera_id, (0, 0))
        cameras.append(
            CameraRead.of(
                camera_id,
                policy,
                overrides.get(camera_id),
                frames=frames,
                bytes_kept=kept,
                bytes_originals=originals,
                oldest=oldest,
                newest=newest,
                daily_kept=kept_recent / RATE_WINDOW_DAYS,
                daily_originals=originals_recent / RATE_WINDOW_DAYS,
            )
        )
    return cameras


def set_policy(
    camera_id: str, update: PolicyUpdate, *, session: Session, principal: Principal
) -> PolicyRead:
    """Replace the camera's overrides (a None field follows the archive's default)."""
    repository.lock(session)
    row = repository.policy(session, camera_id)
    if row is None:
        row = CameraPolicy(camera_id=camera_id)
        session.add(row)
    row.retention_days = update.retention_days
    row.quota_bytes = update.quota_bytes
    row.originals_hours = update.originals_hours
    row.updated_at = utcnow()
    row.updated_by = principal.name
    session.flush()
    detail = (
        f"camera {camera_id}: retention_days={update.retention_days} "
        f"quota_bytes={update.quota_bytes} originals_hours={update.originals_hours}"
    )
    record_event(
        principal.name,
        "policy.set",
        None,
        session=session,
        detail=detail,
        client_address=principal.client_address,
    )
    return PolicyRead.of(row)


def read_original(
    frame_id: str, *, session: Session, store: BlobStore, principal: Principal
) -> tuple[Frame, bytes]:
    """The upload's own bytes while they are kept; the read is audit-logged."""
    frame = get_frame(frame_id, session=session)
    if frame.original_key is None:
        raise OriginalNotKept(
            f"frame {frame.id} keeps no original: none was kept at ingest (originals window 0) "
            "or it was compacted after the window"
        )
    data = store.get(frame.original_key)
    record_read(principal, "frame.original.read", frame.id, session=session)
    return frame, data


def audit_page(
    *,
    session: Session,
    frame_id: str | None,
    key_name: str | None,
    action: str | None,
    start: datetime | None,
    end: datetime | None,
    cursor: str | None,
    limit: int,
) -> AuditPage:
    """One page of the audit log in append order, filtered; `cursor` is the last id seen."""
    if start is not None and end is not None and end <= start:
        raise InvalidInput("'to' must be after 'from'")
    after = None
    if cursor is not None:
        if not cursor.isdigit() or len(cursor) > 18:
            raise InvalidInput("cursor: not one this API gave out")
        after = int(cursor)
    entries = repository.audit_page(
        session,
        frame_id=frame_id,
        key_name=key_name,
        action=action,
        start=start,
        end=end,
        after_id=after,
        limit=limit + 1,
    )
    more = len(entries) > limit
    entries = entries[:limit]
    items = [
        AuditEntryRead(
            id=e.id,
            at=e.at,
            key_name=e.key_name,
            action=e.action,
            frame_id=e.frame_id,
            detail=e.detail,
            client_address=e.client_address or "",
            prev_hash=e.prev_hash,
            row_hash=e.row_hash,
        )
        for e in entries
    ]
    return AuditPage(items=items, next_cursor=str(entries[-1].id) if more else None)
