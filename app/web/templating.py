"""The Jinja2 environment of the pages and the headers every page is sent with."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.web import charts

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["bytes"] = charts.format_bytes
templates.env.filters["thousands"] = lambda n: f"{n:,}"

# Pages hold what a key may read: never cached, never shown inside another site's frame, and
# nothing loaded from anywhere but this server.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "same-origin",
}


def page(
    request: Request, template: str, status_code: int = 200, **context: object
) -> HTMLResponse:
    return templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=PAGE_HEADERS
    )
