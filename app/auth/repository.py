"""SQL for API keys and the audit log."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.auth.models import ApiKey, AuditLogEntry

# Every request with a key runs it: built once, its value bound per call (app/frames/repository.py).
_KEY_BY_HASH = sa.select(ApiKey).where(ApiKey.key_hash == sa.bindparam("key_hash"))


def key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalar(_KEY_BY_HASH, {"key_hash": key_hash})


_KEYS = ApiKey.__table__
# What a request needs of its key, as a Core query on the session's connection: the ORM's
# execution path costs more than the query itself on SQLite.
_ACTIVE_KEY = sa.select(_KEYS.c.id, _KEYS.c.name, _KEYS.c.scopes).where(
    _KEYS.c.key_hash == sa.bindparam("key_hash"), _KEYS.c.revoked_at.is_(None)
)


def active_key(session: Session, key_hash: str) -> sa.Row[tuple[int, str, str]] | None:
    """(id, name, scopes) of the key in use with this hash; None if unknown or revoked."""
    return session.connection().execute(_ACTIVE_KEY, {"key_hash": key_hash}).first()


def key_by_name(session: Session, name: str) -> ApiKey | None:
    """The key that goes by `name`: the one in use, else the latest revoked one."""
    query = sa.select(ApiKey).where(ApiKey.name == name)
    query = query.order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())
    return session.scalar(query.limit(1))


def all_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(sa.select(ApiKey).order_by(ApiKey.name)))


def audit_entries(session: Session, *, frame_id: str | None = None) -> list[AuditLogEntry]:
    query = sa.select(AuditLogEntry).order_by(AuditLogEntry.id)
    if frame_id is not None:
        query = query.where(AuditLogEntry.frame_id == frame_id)
    return list(session.scalars(query))
