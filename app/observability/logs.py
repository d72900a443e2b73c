"""Structured logs: one JSON object per line (CCTV_LOG_FORMAT=json), each carrying the id of the
request it belongs to. The id comes from the client's X-Request-ID (when it is a sane token) or is
made here, is sent back in the response, and travels with the restore jobs the request starts: to
the in-process pool's threads and, as a Celery message header, to the worker."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID_HEADER = "X-Request-ID"
_request_id: ContextVar[str | None] = ContextVar("cctv_request_id", default=None)
# Only short plain tokens are taken from a client: the id is written into every log line.
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

# The attributes every LogRecord has; anything else was passed in `extra=` and is logged too.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


def current_request_id() -> str | None:
    return _request_id.get()


def accept_request_id(presented: str | None) -> str:
    """The client's id if it is a plain token of at most 64 characters, else a new one."""
    if presented and _ACCEPTED.match(presented):
        return presented
    return uuid.uuid4().hex


@contextmanager
def request_context(request_id: str | None) -> Iterator[None]:
    """Log lines inside carry `request_id` (None: no request, as in housekeeping)."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record (put on handlers, so records from any logger get it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC), level, logger, message, request_id, the `extra=`
    fields, and the traceback as `exc` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(levelname)s %(name)s [%(request_id)s]: %(message)s"


def use_format(handler: logging.Handler, log_format: str) -> None:
    """Give `handler` the request id filter and the chosen format ("json" or "text")."""
    handler.addFilter(RequestIdFilter())
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """The root logger writes to stderr in `log_format` (like logging.basicConfig, nothing
    changes where logging is configured already: an embedding program, a test runner)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    use_format(handler, log_format)
    root.addHandler(handler)
    root.setLevel(level)
