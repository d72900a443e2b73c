"""The blob-store interface the service is written against, and the rules for keys."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol

# Keys are built by the app from its own ids, never from user input; this is the last guard.
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")

# What readiness writes: about one stored frame's worth, so a full disk cannot pass.
PROBE_BYTES = b"\0" * 64 * 1024


class BlobStore(Protocol):
    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        """Write atomically; raises BlobExists if the key is there (never overwrites)."""

    def get(self, key: str) -> bytes:
        """The bytes under `key`; raises BlobNotFound."""

    def delete(self, key: str) -> None:
        """Remove `key`; deleting a missing key is not an error."""

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str = "") -> Iterator[str]: ...

    def check(self) -> None:
        """Raise StorageUnavailable unless a small blob can be written (readiness)."""

    def free_bytes(self) -> int | None:
        """Free space where blobs are written; None when the store has no such limit (S3)."""


def check_key(key: str) -> str:
    """`key` if it is a safe relative path of plain segments, else ValueError."""
    if not _KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"invalid blob key: {key!r}")
    return key
