"""The frame row: one archived frame, its original's fingerprint and the small stored copy."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class Frame(Base):
    __tablename__ = "frames"
    __table_args__ = (
        # The idempotency rule: one camera never archives the same bytes twice.
        sa.UniqueConstraint("camera_id", "original_sha256"),
        sa.Index("ix_frames_camera_id_captured_at", "camera_id", "captured_at", "id"),
        sa.Index("ix_frames_captured_at", "captured_at", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    camera_id: Mapped[str] = mapped_column(sa.String(128))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    tags: Mapped[list[str]] = mapped_column(sa.JSON)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(255), unique=True)

    original_sha256: Mapped[str] = mapped_column(sa.String(64))
    original_format: Mapped[str] = mapped_column(sa.String(8))
    original_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    original_width: Mapped[int] = mapped_column(sa.Integer)
    original_height: Mapped[int] = mapped_column(sa.Integer)
    # The EXIF orientation (2-8) applied before storing, so the stored frame is upright as a
    # viewer showed it; None when the file was already upright.
    exif_orientation: Mapped[int | None] = mapped_column(sa.SmallInteger)

    stored_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    stored_codec: Mapped[str] = mapped_column(sa.String(32))
    stored_media_type: Mapped[str] = mapped_column(sa.String(32))
    stored_sha256: Mapped[str] = mapped_column(sa.String(64))
    stored_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    stored_width: Mapped[int] = mapped_column(sa.Integer)
    stored_height: Mapped[int] = mapped_column(sa.Integer)
    scale: Mapped[int] = mapped_column(sa.Integer)
    degradation_id: Mapped[str] = mapped_column(sa.String(64))

    # The canonical HR frame (PNG), kept for the audit sample only.
    reference_key: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    reference_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    # The upload's bytes unchanged, kept while the camera's originals window (or a legal hold)
    # lasts; None when not kept or compacted (app/lifecycle).
    original_key: Mapped[str | None] = mapped_column(sa.String(255), unique=True)


class CameraFirstFrame(Base):
    """The frame that is its camera's first audit reference; the primary key makes the claim
    race-free (one row per camera, whichever upload commits first)."""

    __tablename__ = "camera_first_frames"

    camera_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    frame_id: Mapped[str] = mapped_column(sa.ForeignKey("frames.id", ondelete="CASCADE"))
