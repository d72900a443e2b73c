"""Scopes and the authenticated caller."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    ingest = "ingest"  # push frames (cameras, NVRs)
    read = "read"  # list frames, fetch stored and restored frames, stats (investigators)
    admin = "admin"  # everything


@dataclass(frozen=True)
class Principal:
    """The API key a request was made with."""

    key_id: int
    name: str
    scopes: frozenset[Scope]
    client_address: str = ""  # where the request came from, for the audit log

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.admin in self.scopes


def parse_scopes(text: str) -> frozenset[Scope]:
    """ "ingest,read" -> {ingest, read}; ValueError names an unknown scope."""
    scopes = set()
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        try:
            scopes.add(Scope(name))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise ValueError(f"unknown scope {name!r} (known: {known})") from None
    if not scopes:
        raise ValueError("give at least one scope")
    return frozenset(scopes)
