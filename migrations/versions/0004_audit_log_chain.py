"""The audit log refuses REPLACE too, and its rows are chained by hash.

SQLite's INSERT OR REPLACE deletes the row it replaces without firing DELETE triggers (unless
recursive triggers are on): a BEFORE INSERT trigger now refuses any insert that would replace a
row. On PostgreSQL the equivalents (INSERT .. ON CONFLICT DO UPDATE, MERGE) fire the UPDATE and
DELETE statement triggers, which refuse them; a row trigger refuses an explicit id or link that
is already taken. Existing rows are chained in id order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
MESSAGE = "audit_log is append-only"


def upgrade() -> None:
    drop_guards()
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("row_hash", sa.String(64), nullable=True))
    _chain_existing_rows()
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("row_hash", existing_type=sa.String(64), nullable=False)
    op.create_index("ix_audit_log_prev_hash", "audit_log", ["prev_hash"], unique=True)
    create_guards(replace=True)


def downgrade() -> None:
    drop_guards()
    op.drop_index("ix_audit_log_prev_hash", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("row_hash")
        batch.drop_column("prev_hash")
    create_guards(replace=False)


def _canonical(at: datetime, key_name: str, action: str, frame_id: str | None, detail: str) -> str:
    # A frozen copy of app.auth.audit.canonical: this migration must hash as it did when written.
    fields = [at.strftime("%Y-%m-%dT%H:%M:%S.%f"), key_name, action, frame_id, detail]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True)


def _chain_existing_rows() -> None:
    log = sa.table(
        "audit_log",
        sa.column("id", sa.BigInteger),
        sa.column("at", sa.DateTime),
        sa.column("key_name", sa.String),
        sa.column("action", sa.String),
        sa.column("frame_id", sa.String),
        sa.column("detail", sa.String),
        sa.column("prev_hash", sa.String),
        sa.column("row_hash", sa.String),
    )
    bind = op.get_bind()
    prev = GENESIS
    rows = bind.execute(
        sa.select(
            log.c.id, log.c.at, log.c.key_name, log.c.action, log.c.frame_id, log.c.detail
        ).order_by(log.c.id)
    ).all()
    for row in rows:
        content = _canonical(row.at, row.key_name, row.action, row.frame_id, row.detail)
        row_hash = hashlib.sha256((prev + content).encode()).hexdigest()
        bind.execute(
            sa.update(log).where(log.c.id == row.id).values(prev_hash=prev, row_hash=row_hash)
        )
        prev = row_hash


def create_guards(*, replace: bool) -> None:
    """UPDATE and DELETE refused (as in 0001), and with `replace` any insert that replaces."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{action.lower()} BEFORE {action} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )
        if replace:
            op.execute(
                "CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log "
                "WHEN EXISTS (SELECT 1 FROM audit_log "
                "WHERE id = NEW.id OR prev_hash = NEW.prev_hash) "
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            "ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
        if replace:
            op.execute(
                "CREATE FUNCTION audit_log_no_replace() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN IF EXISTS (SELECT 1 FROM audit_log "
                "WHERE id = NEW.id OR prev_hash = NEW.prev_hash) "
                f"THEN RAISE EXCEPTION '{MESSAGE}'; END IF; RETURN NEW; END $$"
            )
            op.execute(
                "CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log "
                "FOR EACH ROW EXECUTE FUNCTION audit_log_no_replace()"
            )


def drop_guards() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("update", "delete", "replace"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_log_no_{name}")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_replace ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_no_replace()")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
