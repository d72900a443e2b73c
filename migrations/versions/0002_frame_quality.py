"""Restoration quality measured on the audit sample.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "frame_quality",
        sa.Column("frame_id", sa.String(32), nullable=False),
        sa.Column("weights_sha256", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("psnr_y_edsr", sa.Float(), nullable=False),
        sa.Column("psnr_y_bicubic", sa.Float(), nullable=False),
        sa.Column("measured_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["frame_id"], ["frames.id"], name="fk_frame_quality_frame_id_frames"
        ),
        sa.PrimaryKeyConstraint("frame_id", "weights_sha256", name="pk_frame_quality"),
    )


def downgrade() -> None:
    op.drop_table("frame_quality")
