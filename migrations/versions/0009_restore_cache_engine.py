"""The restore cache records the engine that produced each restoration's pixels (torch,
openvino-int8, onnx-int8, ...), so a cached frame is reported with the engine that made it, not
the one the reading server runs now (issue 13).

The column is nullable: entries cached before this revision have none, and are reported with
the engine "unknown" until they expire. Bicubic entries record "" (no network ran).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("restore_cache") as batch:
        batch.add_column(sa.Column("engine", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("restore_cache") as batch:
        batch.drop_column("engine")
