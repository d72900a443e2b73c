"""Restore jobs (one row per job, one item per frame) and the restore cache."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.auth.models import BigId
from app.db import Base, UTCDateTime


class RestoreJob(Base):
    __tablename__ = "restore_jobs"
    __table_args__ = (sa.Index("ix_restore_jobs_state", "state"),)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(16))  # queued, running, done, failed
    method: Mapped[str] = mapped_column(sa.String(16))
    format: Mapped[str] = mapped_column(sa.String(8))
    requested_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)  # why the whole job failed
    # The server process holding it (app/leases.py); None: no one, any process may take it.
    owner: Mapped[str | None] = mapped_column(sa.String(64))


class RestoreJobItem(Base):
    __tablename__ = "restore_job_items"
    __table_args__ = (sa.Index("ix_restore_job_items_frame_id_state", "frame_id", "state"),)

    job_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("restore_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    frame_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("frames.id"), primary_key=True
    )
    position: Mapped[int] = mapped_column(sa.Integer)
    state: Mapped[str] = mapped_column(sa.String(16))  # pending, done, failed
    error: Mapped[str | None] = mapped_column(sa.Text)


class CachedRestoration(Base):
    """A restored image kept for `restore_cache_ttl_s`; its bytes count against the savings."""

    __tablename__ = "restore_cache"
    __table_args__ = (
        sa.UniqueConstraint("frame_id", "weights_sha256", "method", "format"),
        sa.Index("ix_restore_cache_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    frame_id: Mapped[str] = mapped_column(sa.String(32), sa.ForeignKey("frames.id"))
    method: Mapped[str] = mapped_column(sa.String(16))
    format: Mapped[str] = mapped_column(sa.String(8))
    model_name: Mapped[str] = mapped_column(sa.String(128))
    weights_sha256: Mapped[str] = mapped_column(sa.String(64))
    # What ran the network that made these pixels ("" for bicubic); None for entries cached
    # before migration 0009, whose engine was not recorded.
    engine: Mapped[str | None] = mapped_column(sa.String(64))
    blob_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    media_type: Mapped[str] = mapped_column(sa.String(32))
    bytes: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
