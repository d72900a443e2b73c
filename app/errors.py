"""Domain errors carry their HTTP status; one handler turns every error into the same JSON shape.

`{"error": {"code": "...", "message": "..."}}` for ours, for FastAPI's request validation and
for Starlette's own HTTP errors (unknown route, wrong method, body over the limit). Code below the
routers raises these and never builds an HTTP response itself.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


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
    status_code = 409
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


# -- the one handler ------------------------------------------------------------------------

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "upload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


async def _archive_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ArchiveError)
    if exc.status_code >= 500:
        logger.error("%s %s: %s: %s", request.method, request.url.path, exc.code, exc.message)
    return JSONResponse(
        error_body(exc.code, exc.message), status_code=exc.status_code, headers=exc.headers
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(error_body("invalid_request", _describe_validation(exc)), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ArchiveError, _archive_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
