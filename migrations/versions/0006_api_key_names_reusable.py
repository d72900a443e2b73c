"""A revoked key's name can be given to a new key: names are unique among keys in use only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_IN_USE = sa.text("revoked_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint("uq_api_keys_name", type_="unique")
    op.create_index(
        "uq_api_keys_active_name",
        "api_keys",
        ["name"],
        unique=True,
        sqlite_where=_IN_USE,
        postgresql_where=_IN_USE,
    )


def downgrade() -> None:
    op.drop_index("uq_api_keys_active_name", table_name="api_keys")
    with op.batch_alter_table("api_keys") as batch:
        batch.create_unique_constraint("uq_api_keys_name", ["name"])
