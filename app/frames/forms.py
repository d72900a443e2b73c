"""Multipart rules FastAPI does not enforce: a field sent twice is ambiguous, not "last wins"."""

from __future__ import annotations

from fastapi import Request

from app.deps import IngestKey
from app.errors import InvalidInput

SINGLE_FIELDS = ("file", "camera_id", "captured_at")


async def single_form_fields(request: Request, principal: IngestKey) -> None:
    """Refuse an upload that repeats a field which takes one value (FastAPI would keep the last).

    It takes the caller's key so that a request without one is a 401 (403 without the scope)
    before anything is said about its body; FastAPI authenticates once per request."""
    form = await request.form()  # parsed once per request: FastAPI has read it already
    for name in SINGLE_FIELDS:
        count = len(form.getlist(name))
        if count > 1:
            raise InvalidInput(f"{name}: sent {count} times; send it exactly once")
