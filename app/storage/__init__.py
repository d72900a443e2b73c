"""Blob storage: one interface, a local-folder store and an S3 store, chosen by URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from app.config import Settings
from app.storage.base import BlobStore, check_key
from app.storage.local import LocalStore

__all__ = ["BlobStore", "LocalStore", "build_store", "check_key"]


def build_store(settings: Settings) -> BlobStore:
    """The store for `settings.storage_url`: "file:///abs/dir" or a plain path -> LocalStore,
    "s3://bucket/prefix" -> S3Store (its client from the s3_* settings)."""
    url = settings.storage_url
    if not url:
        return LocalStore(Path(settings.data_dir) / "blobs")
    if url.startswith("s3://"):
        from app.storage.s3 import S3Store  # boto3 is imported only when configured

        return S3Store.from_url(url, settings)
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URLs must be local, e.g. file:///srv/archive: {url!r}")
        return LocalStore(Path(unquote(parts.path)))
    if parts.scheme and len(parts.scheme) > 1:  # a one-letter scheme is a Windows drive
        raise ValueError(f"unsupported storage URL {url!r}: use a folder, file:// or s3://")
    return LocalStore(Path(url))
