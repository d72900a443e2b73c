"""ASGI middleware: the request id and one access line per request; counting ingest answers."""

from __future__ import annotations

import json
import logging
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import metrics
from app.observability.logs import REQUEST_ID_HEADER, accept_request_id, request_context

access_logger = logging.getLogger("cctv.access")

# An ingest answer is a frame's JSON or an error: a few kB. Anything longer is not parsed.
_MAX_INGEST_ANSWER = 64 * 1024


class RequestContextMiddleware:
    """Binds the request id for the request's log lines, answers it in X-Request-ID, and logs
    method, path, status and duration once the answer is sent (never the query string, which
    might carry a secret someone pasted)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accept_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with request_context(request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                access_logger.info(
                    "%s %s %d",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )


class IngestMetricsMiddleware:
    """Counts the answers to POST /v1/frames: archived (and their bytes), repeated, refused by
    reason, whichever layer answered (the key check and the size limit answer before the route)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].rstrip("/") == "/v1/frames"
        ):
            await self.app(scope, receive, send)
            return
        status = 0
        body = bytearray()

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                if len(body) <= _MAX_INGEST_ANSWER:
                    body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    metrics.record_ingest(status, _json(bytes(body)))
            await send(message)

        await self.app(scope, receive, observe)


def _json(data: bytes) -> dict[str, object]:
    try:
        parsed = json.loads(data)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
