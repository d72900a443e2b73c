"""Frames record the EXIF orientation applied before they were stored.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: frames archived before this were stored as decoded (not rotated),
    # and NULL is the truthful "none applied" for them.
    with op.batch_alter_table("frames") as batch:
        batch.add_column(sa.Column("exif_orientation", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("frames") as batch:
        batch.drop_column("exif_orientation")
