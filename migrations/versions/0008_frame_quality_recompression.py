"""The audit sample's measurements gain the whole-frame alternative at the same bytes: the HR
reference recompressed whole with WebP at the highest quality whose size fits the frame's stored
bytes, and its PSNR-Y (issue 14).

All three columns are nullable: rows measured before this revision have none of them (the next
measurement fills them in); a frame for which even WebP quality 0 is larger than its stored bytes
has the quality-0 size in recompressed_bytes and NULL quality and PSNR-Y.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("frame_quality") as batch:
        batch.add_column(sa.Column("psnr_y_recompressed", sa.Float(), nullable=True))
        batch.add_column(sa.Column("recompressed_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("recompressed_quality", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("frame_quality") as batch:
        batch.drop_column("recompressed_quality")
        batch.drop_column("recompressed_bytes")
        batch.drop_column("psnr_y_recompressed")
