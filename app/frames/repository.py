"""SQL for frames."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.frames.models import CameraFirstFrame, Frame


def get(session: Session, frame_id: str) -> Frame | None:
    return session.get(Frame, frame_id)


def by_ids(session: Session, frame_ids: list[str]) -> dict[str, Frame]:
    frames = session.scalars(sa.select(Frame).where(Frame.id.in_(frame_ids)))
    return {frame.id: frame for frame in frames}


# Statements every upload runs are built once, with their values as bound parameters: SQLAlchemy
# then reuses the compiled form instead of building and keying a new statement per upload (half
# the Python time of each query, measured on SQLite).
_BY_CAMERA_AND_SHA256 = sa.select(Frame.id).where(
    Frame.camera_id == sa.bindparam("camera_id"),
    Frame.original_sha256 == sa.bindparam("sha256"),
)
_BY_IDEMPOTENCY_KEY = sa.select(Frame).where(Frame.idempotency_key == sa.bindparam("key"))


def by_camera_and_sha256(session: Session, camera_id: str, sha256: str) -> Frame | None:
    # Almost every upload is new: the look-up asks for the id alone, and loads a frame only when
    # there is one.
    frame_id = session.scalar(_BY_CAMERA_AND_SHA256, {"camera_id": camera_id, "sha256": sha256})
    return None if frame_id is None else get(session, frame_id)


def by_idempotency_key(session: Session, key: str) -> Frame | None:
    return session.scalar(_BY_IDEMPOTENCY_KEY, {"key": key})


_FIRST_FRAME_CLAIMED = sa.select(CameraFirstFrame.camera_id).where(
    CameraFirstFrame.camera_id == sa.bindparam("camera_id")
)


def first_frame_claimed(session: Session, camera_id: str) -> bool:
    """Whether the camera has its first frame recorded (a read: `claim_first_frame` decides)."""
    return session.scalar(_FIRST_FRAME_CLAIMED, {"camera_id": camera_id}) is not None


def claim_first_frame(session: Session, camera_id: str, frame_id: str) -> bool:
    """Record `frame_id` as the camera's first frame unless one is recorded; True if this call
    did. On PostgreSQL a concurrent claim waits for this transaction and then finds the row."""
    statement = _claim_first_frame(session.get_bind().dialect.name)
    claimed = session.execute(statement, {"camera_id": camera_id, "frame_id": frame_id})
    return claimed.first() is not None


@lru_cache
def _claim_first_frame(dialect: str) -> Any:
    return (
        _insert(dialect)(CameraFirstFrame)
        .values(camera_id=sa.bindparam("camera_id"), frame_id=sa.bindparam("frame_id"))
        .on_conflict_do_nothing()
        .returning(CameraFirstFrame.camera_id)
    )


def _insert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


@lru_cache
def _insert_frame(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING the frame, built once per dialect: the values
    go in as parameters, so SQLAlchemy reuses its compiled form instead of building and keying a
    new statement for every upload."""
    # RETURNING the row (not rowcount: psycopg reports -1 rows for INSERT ... ON CONFLICT DO
    # NOTHING) gives the frame in the same statement, with no second SELECT.
    return _insert(dialect)(Frame).on_conflict_do_nothing().returning(Frame)


def insert_if_absent(session: Session, values: dict[str, Any]) -> Frame | None:
    """Insert a frame unless one with the same camera + bytes or idempotency key exists (a
    concurrent identical upload); the new frame if this call inserted it, else None."""
    statement = _insert_frame(session.get_bind().dialect.name)
    return session.scalars(statement, values).first()


def _filtered(
    camera_id: str | None, start: datetime | None, end: datetime | None
) -> sa.Select[tuple[Frame]]:
    query = sa.select(Frame)
    if camera_id is not None:
        query = query.where(Frame.camera_id == camera_id)
    if start is not None:
        query = query.where(Frame.captured_at >= start)
    if end is not None:
        query = query.where(Frame.captured_at < end)
    return query


def page(
    session: Session,
    *,
    camera_id: str | None,
    start: datetime | None,
    end: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Frame]:
    """Frames in (captured_at, id) order, after the cursor position."""
    query = _filtered(camera_id, start, end)
    if after is not None:
        at, frame_id = after
        query = query.where(
            sa.or_(Frame.captured_at > at, sa.and_(Frame.captured_at == at, Frame.id > frame_id))
        )
    query = query.order_by(Frame.captured_at, Frame.id).limit(limit)
    return list(session.scalars(query))


def selected_ids(
    session: Session,
    *,
    frame_ids: list[str] | None,
    camera_id: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[str]:
    """The frames a request selects: its `frame_ids` (each once, in order), or up to `limit`
    frame ids of `camera_id` in the capture-time range. Callers judge empty and too-large."""
    if frame_ids is not None:
        return list(dict.fromkeys(frame_ids))
    assert camera_id is not None
    return ids_in_range(session, camera_id=camera_id, start=start, end=end, limit=limit)


def ids_in_range(
    session: Session, *, camera_id: str, start: datetime | None, end: datetime | None, limit: int
) -> list[str]:
    query = _filtered(camera_id, start, end).with_only_columns(Frame.id)
    query = query.order_by(Frame.captured_at, Frame.id).limit(limit)
    return list(session.scalars(query))


def blob_keys(session: Session) -> list[tuple[str, str, str | None]]:
    """(frame id, stored key, reference key or None) of every frame (for `verify`)."""
    rows = session.execute(sa.select(Frame.id, Frame.stored_key, Frame.reference_key))
    return [(frame_id, stored, reference) for frame_id, stored, reference in rows]


def reference_degradations(session: Session) -> list[str]:
    """The degradation ids of the frames that keep an HR reference (the audit sample)."""
    query = sa.select(Frame.degradation_id).where(Frame.reference_key.is_not(None)).distinct()
    return list(session.scalars(query))
