"""One handler turns every error into the same JSON shape.

`{"error": {"code": "...", "message": "..."}}` for the domain errors of app/errors.py, for
FastAPI's request validation and for Starlette's own HTTP errors (unknown route, wrong method, body
over the limit). Code below the routers raises domain errors and never builds a response itself.
"""

from __future__ import annotations

import logging
import re

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import ArchiveError, DatabaseUnavailable, error_body

logger = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "upload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
}


# A Python object's repr inside a validator's message, e.g. "<class 'str'>".
_REPR = re.compile(r"<[^<>]*>")
_MAX_PART = 120


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        message = _REPR.sub("something else", message)
        parts.append(f"{where[:_MAX_PART] or 'request'}: {message[:_MAX_PART]}")
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


def database_outage(exc: Exception) -> DatabaseUnavailable:
    """What a client may know of a database error: that it is an outage, and whether the
    database is full; never the host, the driver or the SQL."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    if "full" in text or "no space" in text:
        return DatabaseUnavailable("the database is full (no room for this write); retry later")
    return DatabaseUnavailable("the database is unavailable; retry later")


def log_database_outage(method: str, path: str, exc: Exception) -> DatabaseUnavailable:
    """The outage as the client sees it, logged as one warning line (no traceback)."""
    error = database_outage(exc)
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
    logger.warning("%s %s: %s: %s", method, path, error.code, detail)
    return error


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # A handled exception (not re-raised to the server): one warning line, no traceback.
    error = log_database_outage(request.method, request.url.path, exc)
    return JSONResponse(
        error_body(error.code, error.message), status_code=error.status_code, headers=error.headers
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ArchiveError, _archive_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Outages of the database: OperationalError (refused, dropped, disk full, locked),
    # InterfaceError (connection closed under us), TimeoutError (no pooled connection free).
    for outage in (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError):
        app.add_exception_handler(outage, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
