"""Sign-in: the form, the cookie (what it holds and its flags), scopes, revocation, sign-out."""

from __future__ import annotations

import sqlalchemy as sa

from app.auth.models import ApiKey
from app.auth.service import revoke_key
from app.db import unit_of_work
from app.web.session import COOKIE, SessionSigner, safe_next
from tests.app.conftest import Archive
from tests.app.web.conftest import sign_in


def _key_row(archive: Archive, name: str) -> ApiKey:
    with archive.runtime.session_factory() as session:
        key = session.scalar(sa.select(ApiKey).where(ApiKey.name == name))
        assert key is not None
        session.expunge(key)
        return key


def test_a_page_without_a_session_sends_the_browser_to_the_sign_in_form(archive: Archive) -> None:
    response = archive.client.get("/frames?camera_id=cam-1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fframes%3Fcamera_id%3Dcam-1"
    form = archive.client.get(response.headers["location"])
    assert form.status_code == 200
    assert 'name="api_key"' in form.text and 'method="post"' in form.text
    assert 'value="/frames?camera_id=cam-1"' in form.text


def test_signing_in_sets_a_secure_http_only_cookie_that_is_not_the_key(archive: Archive) -> None:
    response = archive.client.post(
        "/login",
        data={"api_key": archive.keys["investigator"], "next": "/frames"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/frames"  # the key is in no URL
    header = response.headers["set-cookie"]
    flags = {part.strip().lower() for part in header.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
    value = response.cookies[COOKIE]
    assert archive.keys["investigator"] not in header
    key = _key_row(archive, "investigator")
    assert value.split(":")[:2] == [str(key.id), key.key_hash[:16]]


def test_the_cookie_opens_the_pages_and_names_the_key(archive: Archive) -> None:
    sign_in(archive)
    page = archive.client.get("/dashboard")
    assert page.status_code == 200
    assert '<strong id="who">investigator</strong>' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_a_wrong_key_is_refused_with_a_short_message(archive: Archive) -> None:
    for typed in ["cctv_not-a-key", "", "x" * 5000]:
        response = archive.client.post("/login", data={"api_key": typed}, follow_redirects=False)
        assert response.status_code == 401
        assert "Unknown or revoked API key." in response.text
        assert COOKIE not in response.headers.get("set-cookie", "")
        assert typed[:50] not in response.text or not typed


def test_a_key_without_the_read_scope_cannot_sign_in(archive: Archive) -> None:
    response = archive.client.post(
        "/login", data={"api_key": archive.keys["camera"]}, follow_redirects=False
    )
    assert response.status_code == 403
    assert "lacks the read scope" in response.text
    assert "set-cookie" not in response.headers


def test_revoking_the_key_ends_its_sessions(archive: Archive) -> None:
    sign_in(archive)
    assert archive.client.get("/dashboard", follow_redirects=False).status_code == 200
    with unit_of_work(archive.runtime.session_factory) as session:
        revoke_key("investigator", session=session)
    response = archive.client.get("/dashboard", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_a_forged_expired_or_tampered_cookie_is_no_session(archive: Archive) -> None:
    value = sign_in(archive)
    key_id, fingerprint, expires, signature = value.split(":")
    admin = _key_row(archive, "admin")
    forged = [
        f"{admin.id}:{admin.key_hash[:16]}:{expires}:{signature}",  # another key, same signature
        f"{key_id}:{fingerprint}:{int(expires) + 10**6}:{signature}",  # longer life
        f"{key_id}:{fingerprint}:{expires}:{'0' * 64}",
        "garbage",
    ]
    for cookie in forged:
        archive.client.cookies.set(COOKIE, cookie)
        response = archive.client.get("/dashboard", follow_redirects=False)
        assert response.status_code == 303, cookie


def test_signer_refuses_an_expired_cookie_and_another_secret() -> None:
    key = ApiKey(id=7, key_hash="ab" * 32)
    signer = SessionSigner(b"k" * 32, max_age_s=60)
    cookie = signer.issue(key, now=1000.0)
    assert signer.read(cookie, now=1059.0) == (7, "ab" * 8)
    assert signer.read(cookie, now=1061.0) is None
    assert SessionSigner(b"j" * 32, max_age_s=60).read(cookie, now=1000.0) is None


def test_sign_out_clears_the_cookie(archive: Archive) -> None:
    sign_in(archive)
    response = archive.client.post("/logout", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert f'{COOKIE}=""' in response.headers["set-cookie"]
    assert "max-age=0" in response.headers["set-cookie"].lower()


def test_after_sign_in_the_browser_goes_only_to_a_page_of_this_site() -> None:
    assert safe_next("/frames?camera_id=a") == "/frames?camera_id=a"
    for elsewhere in ["https://evil.example/", "//evil.example/x", "/\\evil.example", "", None]:
        assert safe_next(elsewhere) == "/dashboard"
