"""Signing a test client in to the pages."""

from __future__ import annotations

from app.web.session import COOKIE
from tests.app.conftest import Archive


def sign_in(archive: Archive, key: str = "investigator") -> str:
    """Sign in through the form with the key named `key`; returns the session cookie's value.

    The cookie is Secure, which httpx keeps off plain-HTTP requests: it is set on the client by
    hand, as a browser on https (or localhost) would send it."""
    response = archive.client.post(
        "/login", data={"api_key": archive.keys[key], "next": "/dashboard"}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    value = response.cookies[COOKIE]
    archive.client.cookies.set(COOKIE, value)
    return value
