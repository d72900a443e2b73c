"""Signing in to the pages: an API key typed once into /login becomes a signed, HTTP-only cookie.

The cookie holds the key's id, a fingerprint of its stored hash and an expiry, signed with
HMAC-SHA256 under the session secret; never the key itself. Each page checks it against the key's
row, so revoking a key ends its sessions at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.auth import repository as keys
from app.auth.models import ApiKey
from app.auth.schemas import Principal, Scope, parse_scopes
from app.auth.service import hash_key
from app.config import Settings
from app.db import unit_of_work
from app.deps import SessionFactoryDep

COOKIE = "cctv_session"
_FINGERPRINT = 16  # hex characters of the key's stored hash


class SignInRequired(Exception):
    """No valid session: the page answers with the sign-in form (then back to `next_path`)."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageForbidden(Exception):
    """Signed in with a key that lacks the read scope."""


@lru_cache
def _process_secret() -> bytes:
    # No CCTV_SESSION_SECRET: sessions last as long as this process.
    return secrets.token_bytes(32)


class SessionSigner:
    def __init__(self, secret: bytes, max_age_s: int) -> None:
        self._secret = secret
        self.max_age_s = max_age_s

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionSigner:
        configured = settings.session_secret
        secret = configured.get_secret_value().encode() if configured else _process_secret()
        return cls(secret, settings.session_max_age_s)

    def _sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self, key: ApiKey, *, now: float | None = None) -> str:
        expires = int((now or time.time()) + self.max_age_s)
        payload = f"{key.id}:{key.key_hash[:_FINGERPRINT]}:{expires}"
        return f"{payload}:{self._sign(payload)}"

    def read(self, cookie: str | None, *, now: float | None = None) -> tuple[int, str] | None:
        """(key id, hash fingerprint) of a genuine, unexpired cookie; None otherwise."""
        if not cookie or len(cookie) > 200:
            return None
        payload, _, signature = cookie.rpartition(":")
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return None
        try:
            key_id, fingerprint, expires = payload.split(":")
            if int(expires) < (now or time.time()):
                return None
            return int(key_id), fingerprint
        except ValueError:
            return None


def key_for_sign_in(presented: str, *, session: Session) -> ApiKey | None:
    """The active key row behind a key typed into the form; None if unknown or revoked."""
    key = keys.key_by_hash(session, hash_key(presented.strip()))
    return key if key is not None and key.revoked_at is None else None


def principal_of(key: ApiKey) -> Principal:
    return Principal(key_id=key.id, name=key.name, scopes=parse_scopes(key.scopes))


def signer(request: Request) -> SessionSigner:
    found: SessionSigner = request.app.state.session_signer
    return found


SignerDep = Annotated[SessionSigner, Depends(signer)]


def _back_here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def page_key(request: Request, session_factory: SessionFactoryDep, signer: SignerDep) -> Principal:
    """The signed-in key of a page request (read scope); SignInRequired or PageForbidden."""
    found = signer.read(request.cookies.get(COOKIE))
    if found is None:
        raise SignInRequired(_back_here(request))
    key_id, fingerprint = found
    with unit_of_work(session_factory) as session:
        key = session.get(ApiKey, key_id)
        if key is None or key.revoked_at is not None or key.key_hash[:_FINGERPRINT] != fingerprint:
            raise SignInRequired(_back_here(request))
        principal = principal_of(key)
    if not principal.allows(Scope.read):
        raise PageForbidden()
    return principal


PageKey = Annotated[Principal, Depends(page_key)]


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/dashboard"
    return path[:1000]
