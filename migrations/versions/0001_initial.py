"""Initial schema: frames, restore jobs and cache, API keys, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Timestamps are naive UTC (app.db.UTCDateTime); 64-bit ids, plain INTEGER on SQLite (rowid).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("scopes", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
        sa.UniqueConstraint("name", name="uq_api_keys_name"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("key_name", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("frame_id", sa.String(32), nullable=True),
        sa.Column("detail", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_frame_id_at", "audit_log", ["frame_id", "at"])
    _make_append_only("audit_log")

    op.create_table(
        "frames",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("camera_id", sa.String(128), nullable=False),
        sa.Column("captured_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("original_sha256", sa.String(64), nullable=False),
        sa.Column("original_format", sa.String(8), nullable=False),
        sa.Column("original_bytes", sa.BigInteger(), nullable=False),
        sa.Column("original_width", sa.Integer(), nullable=False),
        sa.Column("original_height", sa.Integer(), nullable=False),
        sa.Column("stored_key", sa.String(255), nullable=False),
        sa.Column("stored_codec", sa.String(32), nullable=False),
        sa.Column("stored_media_type", sa.String(32), nullable=False),
        sa.Column("stored_sha256", sa.String(64), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("stored_width", sa.Integer(), nullable=False),
        sa.Column("stored_height", sa.Integer(), nullable=False),
        sa.Column("scale", sa.Integer(), nullable=False),
        sa.Column("degradation_id", sa.String(64), nullable=False),
        sa.Column("reference_key", sa.String(255), nullable=True),
        sa.Column("reference_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_frames"),
        sa.UniqueConstraint(
            "camera_id", "original_sha256", name="uq_frames_camera_id_original_sha256"
        ),
        sa.UniqueConstraint("idempotency_key", name="uq_frames_idempotency_key"),
        sa.UniqueConstraint("reference_key", name="uq_frames_reference_key"),
        sa.UniqueConstraint("stored_key", name="uq_frames_stored_key"),
    )
    op.create_index("ix_frames_camera_id_captured_at", "frames", ["camera_id", "captured_at", "id"])
    op.create_index("ix_frames_captured_at", "frames", ["captured_at", "id"])

    op.create_table(
        "restore_jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_restore_jobs"),
    )
    op.create_index("ix_restore_jobs_state", "restore_jobs", ["state"])

    op.create_table(
        "restore_job_items",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("frame_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["frame_id"], ["frames.id"], name="fk_restore_job_items_frame_id_frames"
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["restore_jobs.id"],
            name="fk_restore_job_items_job_id_restore_jobs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "frame_id", name="pk_restore_job_items"),
    )
    op.create_index(
        "ix_restore_job_items_frame_id_state", "restore_job_items", ["frame_id", "state"]
    )

    op.create_table(
        "restore_cache",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("frame_id", sa.String(32), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("weights_sha256", sa.String(64), nullable=False),
        sa.Column("blob_key", sa.String(255), nullable=False),
        sa.Column("media_type", sa.String(32), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["frame_id"], ["frames.id"], name="fk_restore_cache_frame_id_frames"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_restore_cache"),
        sa.UniqueConstraint("blob_key", name="uq_restore_cache_blob_key"),
        sa.UniqueConstraint(
            "frame_id",
            "weights_sha256",
            "method",
            "format",
            name="uq_restore_cache_frame_id_weights_sha256_method_format",
        ),
    )
    op.create_index("ix_restore_cache_expires_at", "restore_cache", ["expires_at"])


def downgrade() -> None:
    op.drop_table("restore_cache")
    op.drop_table("restore_job_items")
    op.drop_table("restore_jobs")
    op.drop_table("frames")
    _drop_append_only("audit_log")
    op.drop_table("audit_log")
    op.drop_table("api_keys")


def _make_append_only(table: str) -> None:
    """The audit log is evidence: the database itself refuses to change or remove its rows."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{table} is append-only'; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()"
        )


def _drop_append_only(table: str) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
    elif dialect == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
