"""Footage lifecycle (issue 12): camera policies, legal holds, evidence exports, the kept
original's key on frames, and the client address in the audit log.

The audit log only gains a column (ALTER TABLE ADD COLUMN keeps its append-only triggers); rows
before this revision have an empty address, which the chain hash leaves out (app/auth/audit.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Timestamps are naive UTC (app.db.UTCDateTime), as in 0001.

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "camera_policies",
        sa.Column("camera_id", sa.String(128), primary_key=True),
        sa.Column("retention_days", sa.Integer),
        sa.Column("quota_bytes", sa.BigInteger),
        sa.Column("originals_hours", sa.Integer),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("case_reference", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("camera_id", sa.String(128)),
        sa.Column("start", sa.DateTime()),
        sa.Column("end", sa.DateTime()),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("released_at", sa.DateTime()),
        sa.Column("released_by", sa.String(64)),
        sa.Column("release_reason", sa.String(500)),
    )
    op.create_index(
        "ix_legal_holds_camera_id_released_at", "legal_holds", ["camera_id", "released_at"]
    )
    op.create_table(
        "legal_hold_frames",
        sa.Column(
            "hold_id",
            sa.String(32),
            sa.ForeignKey("legal_holds.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "frame_id",
            sa.String(32),
            sa.ForeignKey("frames.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_legal_hold_frames_frame_id", "legal_hold_frames", ["frame_id"])
    op.create_table(
        "evidence_exports",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("frame_ids", sa.JSON, nullable=False),
        sa.Column("include", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime()),
        sa.Column("blob_key", sa.String(255), unique=True),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("error", sa.Text),
        sa.Column("summary", sa.JSON),
    )
    op.create_index("ix_evidence_exports_state", "evidence_exports", ["state"])
    with op.batch_alter_table("frames") as batch:
        batch.add_column(sa.Column("original_key", sa.String(255)))
        batch.create_unique_constraint("uq_frames_original_key", ["original_key"])
    # Not batch: recreating audit_log would drop its append-only triggers.
    op.add_column(
        "audit_log",
        sa.Column("client_address", sa.String(64), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_column("audit_log", "client_address")
    with op.batch_alter_table("frames") as batch:
        batch.drop_constraint("uq_frames_original_key", type_="unique")
        batch.drop_column("original_key")
    op.drop_index("ix_evidence_exports_state", table_name="evidence_exports")
    op.drop_table("evidence_exports")
    op.drop_index("ix_legal_hold_frames_frame_id", table_name="legal_hold_frames")
    op.drop_table("legal_hold_frames")
    op.drop_index("ix_legal_holds_camera_id_released_at", table_name="legal_holds")
    op.drop_table("legal_holds")
    op.drop_table("camera_policies")
