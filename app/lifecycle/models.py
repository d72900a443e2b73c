"""Camera policies, legal holds and evidence exports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class CameraPolicy(Base):
    """A camera's overrides of the archive-wide defaults; a None field follows the default."""

    __tablename__ = "camera_policies"

    camera_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    retention_days: Mapped[int | None] = mapped_column(sa.Integer)  # 0: keep forever
    quota_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)  # None: no quota
    originals_hours: Mapped[int | None] = mapped_column(sa.Integer)  # 0: keep no originals
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(sa.String(64))


class LegalHold(Base):
    """Frames protected from every deletion while the hold is active: listed frames, or every
    frame of a camera captured in [start, end) (open ends allowed), including later uploads."""

    __tablename__ = "legal_holds"
    __table_args__ = (sa.Index("ix_legal_holds_camera_id_released_at", "camera_id", "released_at"),)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    case_reference: Mapped[str] = mapped_column(sa.String(128))
    reason: Mapped[str] = mapped_column(sa.String(500))
    camera_id: Mapped[str | None] = mapped_column(sa.String(128))
    start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    released_by: Mapped[str | None] = mapped_column(sa.String(64))
    release_reason: Mapped[str | None] = mapped_column(sa.String(500))


class LegalHoldFrame(Base):
    """A frame a hold names explicitly."""

    __tablename__ = "legal_hold_frames"
    __table_args__ = (sa.Index("ix_legal_hold_frames_frame_id", "frame_id"),)

    hold_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("legal_holds.id", ondelete="CASCADE"), primary_key=True
    )
    frame_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("frames.id", ondelete="CASCADE"), primary_key=True
    )


class EvidenceExport(Base):
    """An export's request (the frame ids resolved when it was accepted) and its bundle."""

    __tablename__ = "evidence_exports"
    __table_args__ = (sa.Index("ix_evidence_exports_state", "state"),)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    # queued, running, done, failed; expired: done, its bundle deleted (CCTV_EXPORT_TTL_DAYS)
    state: Mapped[str] = mapped_column(sa.String(16))
    requested_by: Mapped[str] = mapped_column(sa.String(64))
    frame_ids: Mapped[list[str]] = mapped_column(sa.JSON)
    include: Mapped[list[str]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    blob_key: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    error: Mapped[str | None] = mapped_column(sa.Text)
    summary: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    # The server process building it (app/leases.py); None: no one, any process may take it.
    owner: Mapped[str | None] = mapped_column(sa.String(64))
