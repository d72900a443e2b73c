"""Restoration quality measured on the audit sample (frames whose HR reference is kept)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class FrameQuality(Base):
    """PSNR-Y of one model's restoration and of bicubic against a frame's kept HR reference, and
    of the whole-frame alternative at the same bytes: the reference recompressed with WebP at the
    highest quality no larger than the frame's stored bytes (app/stats/recompression.py).

    The recompression columns are NULL for rows measured before migration 0008; when no WebP
    frame is that small, recompressed_bytes holds quality 0's size and the other two are NULL."""

    __tablename__ = "frame_quality"

    frame_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("frames.id"), primary_key=True
    )
    weights_sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(128))
    psnr_y_edsr: Mapped[float] = mapped_column(sa.Float)
    psnr_y_bicubic: Mapped[float] = mapped_column(sa.Float)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime())
    psnr_y_recompressed: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    recompressed_bytes: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    recompressed_quality: Mapped[int | None] = mapped_column(sa.SmallInteger, nullable=True)
