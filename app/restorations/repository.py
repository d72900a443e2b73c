"""SQL for restore jobs, their items and the restore cache."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.restorations.models import CachedRestoration, RestoreJob, RestoreJobItem

ACTIVE = ("queued", "running")
FINISHED = ("done", "failed")


@dataclass(frozen=True)
class ItemCounts:
    total: int = 0
    pending: int = 0
    done: int = 0
    failed: int = 0


def get_job(session: Session, job_id: str) -> RestoreJob | None:
    return session.get(RestoreJob, job_id)


def items(session: Session, job_id: str) -> list[RestoreJobItem]:
    query = sa.select(RestoreJobItem).where(RestoreJobItem.job_id == job_id)
    return list(session.scalars(query.order_by(RestoreJobItem.position)))


def item(session: Session, job_id: str, frame_id: str) -> RestoreJobItem | None:
    return session.get(RestoreJobItem, (job_id, frame_id))


def pending_frame_ids(session: Session, job_id: str) -> list[str]:
    query = sa.select(RestoreJobItem.frame_id).where(
        RestoreJobItem.job_id == job_id, RestoreJobItem.state == "pending"
    )
    return list(session.scalars(query.order_by(RestoreJobItem.position)))


def item_counts(session: Session, job_id: str) -> ItemCounts:
    rows = session.execute(
        sa.select(RestoreJobItem.state, sa.func.count())
        .where(RestoreJobItem.job_id == job_id)
        .group_by(RestoreJobItem.state)
    )
    counts = dict(rows.all())
    return ItemCounts(
        total=sum(counts.values()),
        pending=counts.get("pending", 0),
        done=counts.get("done", 0),
        failed=counts.get("failed", 0),
    )


def active_job_for(session: Session, frame_id: str, method: str, fmt: str) -> RestoreJob | None:
    """A queued or running job that has yet to restore `frame_id` this way."""
    query = (
        sa.select(RestoreJob)
        .join(RestoreJobItem, RestoreJobItem.job_id == RestoreJob.id)
        .where(
            RestoreJobItem.frame_id == frame_id,
            RestoreJobItem.state == "pending",
            RestoreJob.state.in_(ACTIVE),
            RestoreJob.method == method,
            RestoreJob.format == fmt,
        )
        .order_by(RestoreJob.created_at)
        .limit(1)
    )
    return session.scalar(query)


def idle_active_jobs(session: Session, idle_since: datetime) -> list[RestoreJob]:
    """Queued or running jobs with no progress since `idle_since`, oldest first."""
    query = sa.select(RestoreJob).where(
        RestoreJob.state.in_(ACTIVE), RestoreJob.updated_at < idle_since
    )
    return list(session.scalars(query.order_by(RestoreJob.updated_at)))


def set_items(
    session: Session, job_id: str, frame_ids: list[str], state: str, error: str | None = None
) -> None:
    if not frame_ids:
        return
    session.execute(
        sa.update(RestoreJobItem)
        .where(RestoreJobItem.job_id == job_id, RestoreJobItem.frame_id.in_(frame_ids))
        .values(state=state, error=error)
    )


def retry_failed_items(session: Session, job_id: str) -> None:
    session.execute(
        sa.update(RestoreJobItem)
        .where(RestoreJobItem.job_id == job_id, RestoreJobItem.state == "failed")
        .values(state="pending", error=None)
    )


def fail_pending_items(session: Session, job_id: str, error: str) -> None:
    session.execute(
        sa.update(RestoreJobItem)
        .where(RestoreJobItem.job_id == job_id, RestoreJobItem.state == "pending")
        .values(state="failed", error=error)
    )


# -- cache ----------------------------------------------------------------------------------


def cache_entry(
    session: Session, frame_id: str, weights_sha256: str, method: str, fmt: str
) -> CachedRestoration | None:
    """The entry for this exact restoration, fresh or expired."""
    return session.scalar(
        sa.select(CachedRestoration).where(
            CachedRestoration.frame_id == frame_id,
            CachedRestoration.weights_sha256 == weights_sha256,
            CachedRestoration.method == method,
            CachedRestoration.format == fmt,
        )
    )


def insert_cache_if_absent(session: Session, values: dict[str, Any]) -> bool:
    """Add a cache entry unless the same restoration is cached already (a concurrent restore
    won the race); True if this call added it."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(CachedRestoration)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(CachedRestoration.id)
    )
    return session.execute(statement).first() is not None


def expired_entries(session: Session, now: datetime, limit: int) -> list[CachedRestoration]:
    query = sa.select(CachedRestoration).where(CachedRestoration.expires_at <= now)
    return list(session.scalars(query.order_by(CachedRestoration.expires_at).limit(limit)))


def blob_keys(session: Session) -> list[tuple[int, str]]:
    """(entry id, blob key) of every cache entry (for `verify`)."""
    rows = session.execute(sa.select(CachedRestoration.id, CachedRestoration.blob_key))
    return [(entry_id, key) for entry_id, key in rows]


def delete_entries(session: Session, entry_ids: list[int]) -> None:
    session.execute(sa.delete(CachedRestoration).where(CachedRestoration.id.in_(entry_ids)))
