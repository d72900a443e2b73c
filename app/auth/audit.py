"""The audit log as a hash chain: each row stores the previous row's hash and its own, so an
edited, removed or reordered row shows even when someone bypasses the database's triggers.

row_hash = SHA-256(prev_hash + canonical(row)); the first row follows GENESIS. A chain cannot
show rows cut off its end: keep the head hash `verify` reports somewhere else to detect that.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.auth.models import AuditLogEntry

GENESIS = "0" * 64
# One lock for every append on PostgreSQL, so two transactions never chain to the same row.
_APPEND_LOCK = 0x0A0D17_C4A1  # any constant bigint, used only here


def canonical(
    at: datetime,
    key_name: str,
    action: str,
    frame_id: str | None,
    detail: str,
    client_address: str = "",
) -> str:
    """The row's content as hashed: UTC time to the microsecond and the text fields, as JSON.
    The client address joins them only when there is one, so rows written before it was
    recorded (migration 0007) keep their hashes. (Migration 0004 keeps its own copy of this
    function for the rows it backfills.)"""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    fields = [at.strftime("%Y-%m-%dT%H:%M:%S.%f"), key_name, action, frame_id, detail]
    if client_address:
        fields.append(client_address)
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True)


def chain_hash(prev_hash: str, content: str) -> str:
    return hashlib.sha256((prev_hash + content).encode()).hexdigest()


def entry_hash(entry: AuditLogEntry) -> str:
    content = canonical(
        entry.at,
        entry.key_name,
        entry.action,
        entry.frame_id,
        entry.detail,
        entry.client_address or "",
    )
    return chain_hash(entry.prev_hash, content)


def append(session: Session, entry: AuditLogEntry) -> None:
    """Add `entry` at the head of the chain (inserted now, committed with the session)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # Held to the end of the transaction: the next appender reads this row as its tail.
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(_APPEND_LOCK)))
    elif dialect == "sqlite":
        # A write that matches no row takes SQLite's one write lock (waiting out the busy
        # timeout), so the tail read next is the latest and stays so until commit.
        session.execute(sa.text("UPDATE audit_log SET id = id WHERE 0"))
    tail = session.scalar(
        sa.select(AuditLogEntry.row_hash).order_by(AuditLogEntry.id.desc()).limit(1)
    )
    entry.prev_hash = tail or GENESIS
    entry.row_hash = entry_hash(entry)
    session.add(entry)
    session.flush()


@dataclass
class ChainReport:
    """What `verify_audit_chain` found: one line per problem, and the head to keep elsewhere."""

    rows: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_audit_chain(session: Session, *, batch: int = 1000) -> ChainReport:
    """Walk the audit log in id order and check every link and every row's hash."""
    report = ChainReport()
    expected_prev, previous_id, last_id = GENESIS, None, None
    while True:
        query = sa.select(AuditLogEntry).order_by(AuditLogEntry.id).limit(batch)
        if last_id is not None:
            query = query.where(AuditLogEntry.id > last_id)
        entries = list(session.scalars(query))
        if not entries:
            return report
        for entry in entries:
            report.rows += 1
            where = f"row {entry.id}"
            if entry.prev_hash != expected_prev:
                after = f"row {previous_id}" if previous_id is not None else "the start"
                report.problems.append(
                    f"{where}: does not follow {after} (a row was removed, inserted or reordered)"
                )
            if entry.row_hash != entry_hash(entry):
                report.problems.append(f"{where}: content does not match its hash (edited)")
            # Carry on from this row's own hash, so one removal reports one broken link.
            expected_prev, previous_id = entry.row_hash, entry.id
            report.head = entry.row_hash
        last_id = entries[-1].id
        session.expunge_all()
