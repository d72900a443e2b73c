"""Domain errors: each carries its HTTP status and code, and nothing of the web framework.

Storage, the restore queues and the Celery worker raise these too, so this module imports no
FastAPI; app/error_handlers.py turns them into the one JSON shape.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ArchiveError(Exception):
    """Base of every error the API reports on purpose."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        return {}


# -- request and input ----------------------------------------------------------------------


class InvalidInput(ArchiveError):
    status_code = 422
    code = "invalid_input"


class UploadTooLarge(ArchiveError):
    status_code = 413
    code = "upload_too_large"


class ImageTooLarge(ArchiveError):
    status_code = 413
    code = "image_too_large"


class UnsupportedMediaType(ArchiveError):
    status_code = 415
    code = "unsupported_media_type"


class CorruptImage(ArchiveError):
    status_code = 422
    code = "corrupt_image"


class IdempotencyConflict(ArchiveError):
    """An Idempotency-Key reused for a different request (422, as the IETF draft says)."""

    status_code = 422
    code = "idempotency_conflict"


# -- lookups --------------------------------------------------------------------------------


class NotFound(ArchiveError):
    status_code = 404
    code = "not_found"


class FrameNotFound(NotFound):
    code = "frame_not_found"


class JobNotFound(NotFound):
    code = "restore_job_not_found"


# -- trust ----------------------------------------------------------------------------------


class Unauthenticated(ArchiveError):
    status_code = 401
    code = "unauthenticated"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'ApiKey header="X-API-Key"'}


class Forbidden(ArchiveError):
    status_code = 403
    code = "forbidden"


class KeyNotFound(NotFound):
    code = "api_key_not_found"


# -- restorations ---------------------------------------------------------------------------


class ModelIncompatible(ArchiveError):
    status_code = 409
    code = "model_incompatible"


class JobNotResumable(ArchiveError):
    status_code = 409
    code = "restore_job_not_resumable"


class RestoreFailed(ArchiveError):
    status_code = 500
    code = "restore_failed"


class QueueUnavailable(ArchiveError):
    """The restore queue is full or its broker is down: the client should retry later."""

    status_code = 503
    code = "queue_unavailable"

    def __init__(self, message: str, *, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


# -- storage --------------------------------------------------------------------------------


class BlobExists(ArchiveError):
    """A write to a key that is already there (stores never overwrite)."""

    code = "blob_exists"


class BlobNotFound(ArchiveError):
    """A row points at a blob the store does not have: an integrity problem, not a client one."""

    code = "blob_missing"


class StorageUnavailable(ArchiveError):
    status_code = 503
    code = "storage_unavailable"

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": "30"}


class DatabaseUnavailable(ArchiveError):
    """The database cannot be reached, or cannot take a write (disk full): retry later."""

    status_code = 503
    code = "database_unavailable"

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": "30"}


# Messages name the field and the problem; whatever they quote from a request stays short.
MAX_MESSAGE_CHARS = 300


def error_body(code: str, message: str) -> dict[str, Any]:
    """The one error shape: `{"error": {"code": ..., "message": ...}}`, the message bounded."""
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 3] + "..."
    return {"error": {"code": code, "message": message}}
