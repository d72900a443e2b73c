"""What is decided before a request body is read: the API key (401), the declared size (413);
and while it is read: its size and the time it takes to arrive (408)."""

from __future__ import annotations

import time

import anyio
import sqlalchemy as sa
from anyio.to_thread import run_sync
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.schemas import Principal
from app.auth.service import authenticate
from app.db import SessionFactory, unit_of_work
from app.error_handlers import log_database_outage
from app.errors import ArchiveError, error_body


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the {limit}-byte limit")


class BodyTimeout(HTTPException):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(408, f"the request body did not arrive within {timeout_s:g} seconds")


class BodyLimitMiddleware:
    """A declared Content-Length over the limit is answered 413 at once, without reading the
    body; a body streamed without one is cut off as soon as it passes the limit (the error is
    raised inside the form parser, so the one error handler formats it)."""

    def __init__(self, app: ASGIApp, max_body_size: int, timeout_s: float) -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_size:
            message = BodyTooLarge(self.max_body_size).detail
            response = JSONResponse(
                error_body("upload_too_large", message),
                status_code=413,
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        received = 0
        deadline = time.monotonic() + self.timeout_s

        async def limited_receive() -> Message:
            nonlocal received
            # A client that stalls mid-body would otherwise hold this request forever.
            try:
                with anyio.fail_after(max(deadline - time.monotonic(), 0.0)):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_size:
                    raise BodyTooLarge(self.max_body_size)
            return message

        await self.app(scope, limited_receive, send)


def lookup_key(session_factory: SessionFactory, presented: str | None) -> Principal:
    """The caller of key `presented`, in a short transaction of its own (401 if unknown)."""
    with unit_of_work(session_factory) as session:
        return authenticate(presented, session=session)


AUTHENTICATED = "authenticated_key"  # request state: (the key presented, its Principal)


class KeyBeforeBodyMiddleware:
    """A request with a body to an API route must present a valid key before a byte of its body
    is read (401 at once); the routes still check the key's scope. The caller found here is
    kept in the request's state, so the route's `CurrentKey` does not look it up again."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("POST", "PUT", "PATCH")
            or not scope["path"].startswith("/v1/")
        ):
            await self.app(scope, receive, send)
            return
        runtime = scope["app"].state.runtime
        presented = Headers(scope=scope).get("x-api-key")
        try:
            principal = await run_sync(lookup_key, runtime.session_factory, presented)
        except ArchiveError as exc:
            error = exc
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError) as exc:
            error = log_database_outage(scope["method"], scope["path"], exc)
        else:
            scope.setdefault("state", {})[AUTHENTICATED] = (presented, principal)
            await self.app(scope, receive, send)
            return
        # The body stays unread: the connection closes after the answer.
        response = JSONResponse(
            error_body(error.code, error.message),
            status_code=error.status_code,
            headers=error.headers | {"Connection": "close"},
        )
        await response(scope, receive, send)
