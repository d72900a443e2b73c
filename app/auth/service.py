"""API keys (created, listed and revoked from the CLI; stored only as SHA-256) and the audit log.

Keys are 256 random bits, so a plain SHA-256 is enough to store them: there is nothing to guess
that a slow hash would protect.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy.orm import Session

from app.auth import audit, repository
from app.auth.models import ApiKey, AuditLogEntry
from app.auth.schemas import Principal, Scope, parse_scopes
from app.db import utcnow
from app.errors import InvalidInput, KeyNotFound, Unauthenticated

KEY_PREFIX = "cctv_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(name: str, scopes: frozenset[Scope], *, session: Session) -> tuple[ApiKey, str]:
    """A new key named `name`; returns the row and the key itself (shown once, never stored)."""
    if not _NAME.match(name):
        raise InvalidInput("key names are 1-64 letters, digits, '.', '_' or '-'")
    taken = repository.key_by_name(session, name)
    if taken is not None and taken.revoked_at is None:
        # A revoked key's name is free again; the revoked row stays for the record.
        raise InvalidInput(f"a key named {name!r} already exists")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        key_hash=hash_key(secret),
        prefix=secret[: len(KEY_PREFIX) + 6],
        scopes=",".join(sorted(scopes)),
        created_at=utcnow(),
    )
    session.add(key)
    session.flush()
    return key, secret


def list_keys(*, session: Session) -> list[ApiKey]:
    return repository.all_keys(session)


def revoke_key(name: str, *, session: Session) -> ApiKey:
    key = repository.key_by_name(session, name)
    if key is None:
        raise KeyNotFound(f"no API key named {name!r}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


def authenticate(presented: str | None, *, session: Session) -> Principal:
    """The caller behind the X-API-Key header; Unauthenticated if it is missing, unknown or
    revoked."""
    if not presented:
        raise Unauthenticated("missing API key: send it in the X-API-Key header")
    key = repository.active_key(session, hash_key(presented))
    if key is None:
        raise Unauthenticated("unknown or revoked API key")
    key_id, name, scopes = key
    return Principal(key_id=key_id, name=name, scopes=parse_scopes(scopes))


def record_read(
    principal: Principal, action: str, frame_id: str, *, session: Session, detail: str = ""
) -> None:
    """Append who read which frame to the audit log's hash chain (committed with the session)."""
    record_event(
        principal.name,
        action,
        frame_id,
        session=session,
        detail=detail,
        client_address=principal.client_address,
    )


def record_event(
    actor: str,
    action: str,
    frame_id: str | None,
    *,
    session: Session,
    detail: str = "",
    client_address: str = "",
) -> None:
    """Append one change of state (a hold, a deletion) to the audit log's hash chain; `actor`
    is a key name, or the archive's own sweep ("system:retention")."""
    entry = AuditLogEntry(
        at=utcnow(),
        key_name=actor[:64],
        action=action[:32],
        frame_id=frame_id,
        detail=detail[:255],
        client_address=client_address[:64],
    )
    audit.append(session, entry)
