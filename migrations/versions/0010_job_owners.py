"""Restore jobs and evidence exports record which server process holds them (`owner`), so that
several processes of one server (`cctv-archive serve --workers N`) share one archive: each takes
a job with an atomic claim and keeps it fresh with a heartbeat (`updated_at`), and a job whose
holder has gone quiet for the stale limit is taken over by another (app/leases.py).

The column is nullable: NULL is a job no process holds (every job before this revision, and
every unfinished job when `serve` starts).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("restore_jobs", "evidence_exports")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("owner", sa.String(64), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("owner")
