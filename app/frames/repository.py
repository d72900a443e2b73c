"""SQL for frames."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.frames.models import CameraFirstFrame, Frame
from app.lifecycle.models import CameraPolicy


def get(session: Session, frame_id: str) -> Frame | None:
    return session.get(Frame, frame_id)


def by_ids(session: Session, frame_ids: list[str]) -> dict[str, Frame]:
    frames = session.scalars(sa.select(Frame).where(Frame.id.in_(frame_ids)))
    return {frame.id: frame for frame in frames}


# Statements every upload runs are built once, with their values as bound parameters: SQLAlchemy
# then reuses the compiled form instead of building and keying a new statement per upload (half
# the Python time of each query, measured on SQLite). They run on the session's connection, as
# Core statements: the ORM's execution path costs more than the query itself on SQLite.
_FRAMES = Frame.__table__
_BY_IDEMPOTENCY_KEY = sa.select(Frame).where(Frame.idempotency_key == sa.bindparam("key"))
_UPLOAD_FACTS = sa.select(
    sa.select(_FRAMES.c.id)
    .where(
        _FRAMES.c.camera_id == sa.bindparam("camera_id"),
        _FRAMES.c.original_sha256 == sa.bindparam("sha256"),
    )
    .scalar_subquery(),
    sa.exists().where(CameraFirstFrame.__table__.c.camera_id == sa.bindparam("camera_id")),
    sa.select(CameraPolicy.__table__.c.originals_hours)
    .where(CameraPolicy.__table__.c.camera_id == sa.bindparam("camera_id"))
    .scalar_subquery(),
)


@dataclass(frozen=True)
class UploadFacts:
    """What an upload needs to know of its camera before the image work, read in one query."""

    existing_id: str | None  # the camera's frame with the same bytes
    first_frame_claimed: bool  # whether the camera has its first frame recorded
    originals_hours: int | None  # the camera's override; None: the archive's default


def upload_facts(session: Session, camera_id: str, sha256: str) -> UploadFacts:
    row = session.connection().execute(_UPLOAD_FACTS, {"camera_id": camera_id, "sha256": sha256})
    existing_id, claimed, originals_hours = row.one()
    return UploadFacts(existing_id, bool(claimed), originals_hours)


def by_idempotency_key(session: Session, key: str) -> Frame | None:
    return session.scalar(_BY_IDEMPOTENCY_KEY, {"key": key})


def claim_first_frame(session: Session, camera_id: str, frame_id: str) -> bool:
    """Record `frame_id` as the camera's first frame unless one is recorded; True if this call
    did. On PostgreSQL a concurrent claim waits for this transaction and then finds the row."""
    statement = _claim_first_frame(session.get_bind().dialect.name)
    claimed = session.connection().execute(
        statement, {"camera_id": camera_id, "frame_id": frame_id}
    )
    return claimed.first() is not None


@lru_cache
def _claim_first_frame(dialect: str) -> Any:
    table = CameraFirstFrame.__table__
    return (
        _insert(dialect)(table)
        .values(camera_id=sa.bindparam("camera_id"), frame_id=sa.bindparam("frame_id"))
        .on_conflict_do_nothing()
        .returning(table.c.camera_id)
    )


def _insert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


@lru_cache
def _insert_frame(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING the id, built once per dialect."""
    # RETURNING (not rowcount: psycopg reports -1 rows for INSERT ... ON CONFLICT DO NOTHING)
    # tells whether the row went in, in the same statement.
    return _insert(dialect)(_FRAMES).on_conflict_do_nothing().returning(_FRAMES.c.id)


def insert_if_absent(session: Session, values: dict[str, Any]) -> Frame | None:
    """Insert a frame unless one with the same camera + bytes or idempotency key exists (a
    concurrent identical upload); the new frame if this call inserted it, else None.

    The frame returned is built from `values`, not loaded: it is not in the session, and a
    change to it is not saved (`set_reference` saves the one change ingest makes)."""
    statement = _insert_frame(session.get_bind().dialect.name)
    inserted = session.connection().execute(statement, values).first()
    return None if inserted is None else Frame(**values)


_SET_REFERENCE = (
    sa.update(_FRAMES)
    .where(_FRAMES.c.id == sa.bindparam("frame_id"))
    .values(reference_key=sa.bindparam("key"), reference_bytes=sa.bindparam("size"))
)


def set_reference(session: Session, frame: Frame, key: str, size: int) -> None:
    """Record the frame's HR reference blob (`key`, `size` bytes) on its row and on `frame`."""
    session.connection().execute(_SET_REFERENCE, {"frame_id": frame.id, "key": key, "size": size})
    frame.reference_key, frame.reference_bytes = key, size


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
