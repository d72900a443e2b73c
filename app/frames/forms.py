"""Multipart rules FastAPI does not enforce: a field sent twice is ambiguous, not "last wins"."""

from __future__ import annotations

from fastapi import Request

from app.errors import InvalidInput

SINGLE_FIELDS = ("file", "camera_id", "captured_at")


async def single_form_fields(request: Request) -> None:
    """Refuse an upload that repeats a field which takes one value (FastAPI would keep the last)."""
    form = await request.form()  # parsed once per request: FastAPI has read it already
    for name in SINGLE_FIELDS:
        count = len(form.getlist(name))
        if count > 1:
            raise InvalidInput(f"{name}: sent {count} times; send it exactly once")
