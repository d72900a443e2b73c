"""Each camera's first frame is claimed in a table of its own, so concurrent first uploads keep
exactly one audit reference (the claim's primary key decides; a check-then-insert raced).

Cameras that already keep a reference are marked as claimed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "camera_first_frames",
        sa.Column("camera_id", sa.String(128), primary_key=True),
        sa.Column(
            "frame_id",
            sa.String(32),
            sa.ForeignKey("frames.id", ondelete="CASCADE"),
            nullable=False,
        ),
    )
    op.execute(
        "INSERT INTO camera_first_frames (camera_id, frame_id) "
        "SELECT camera_id, MIN(id) FROM frames WHERE reference_key IS NOT NULL GROUP BY camera_id"
    )


def downgrade() -> None:
    op.drop_table("camera_first_frames")
