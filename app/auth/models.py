"""API keys (stored hashed) and the append-only audit log of frame reads."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        # One key in use per name; revoked keys keep their name and free it for a new key.
        sa.Index(
            "uq_api_keys_active_name",
            "name",
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))  # shown in listings to tell keys apart
    scopes: Mapped[str] = mapped_column(sa.String(64))  # comma-separated, sorted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditLogEntry(Base):
    """Who read what, when. Rows are only ever inserted (the migrations add triggers that refuse
    UPDATE, DELETE and REPLACE) and chained by hash (app/auth/audit.py)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_frame_id_at", "frame_id", "at"),
        # Two rows can never follow the same one: the chain cannot fork.
        sa.Index("ix_audit_log_prev_hash", "prev_hash", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    key_name: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(32))
    frame_id: Mapped[str | None] = mapped_column(sa.String(32))
    detail: Mapped[str] = mapped_column(sa.String(255), default="")
    # Where the request came from ("" for the archive's own sweeps and rows before 0007).
    client_address: Mapped[str] = mapped_column(sa.String(64), default="", server_default="")
    prev_hash: Mapped[str] = mapped_column(sa.String(64))  # the previous row's row_hash
    row_hash: Mapped[str] = mapped_column(sa.String(64))  # SHA-256(prev_hash + content)
