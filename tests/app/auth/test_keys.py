"""API keys: every endpoint but health needs one, with the right scope; keys are stored hashed."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from app.auth.schemas import Scope, parse_scopes
from app.auth.service import create_key, revoke_key
from app.db import unit_of_work
from app.errors import InvalidInput, KeyNotFound
from tests.app.conftest import Archive

FRAME = "0123456789abcdef0123456789abcdef"
PROTECTED = [
    ("POST", "/v1/frames"),
    ("GET", "/v1/frames"),
    ("GET", f"/v1/frames/{FRAME}"),
    ("GET", f"/v1/frames/{FRAME}/stored"),
    ("GET", f"/v1/frames/{FRAME}/restored"),
    ("POST", "/v1/restore-jobs"),
    ("GET", f"/v1/restore-jobs/{FRAME}"),
    ("GET", "/v1/stats/storage"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("key", [None, "cctv_not-a-real-key"], ids=["missing", "unknown"])
def test_missing_or_unknown_key_is_401(
    archive: Archive, method: str, path: str, key: str | None
) -> None:
    headers = {"X-API-Key": key} if key else {}
    response = archive.client.request(method, path, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert "X-API-Key" in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("key", "method", "path"),
    [
        ("investigator", "POST", "/v1/frames"),
        ("camera", "GET", "/v1/frames"),
        ("camera", "GET", f"/v1/frames/{FRAME}/stored"),
        ("camera", "GET", f"/v1/frames/{FRAME}/restored"),
        ("camera", "POST", "/v1/restore-jobs"),
        ("camera", "GET", "/v1/stats/storage"),
    ],
)
def test_key_without_the_scope_is_403(archive: Archive, key: str, method: str, path: str) -> None:
    response = archive.client.request(method, path, headers=archive.as_key(key))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert key in response.json()["error"]["message"]


def test_scopes_allow_what_they_name_and_admin_allows_all(archive: Archive) -> None:
    assert archive.upload(key="camera").status_code == 201
    frame_id = archive.get("/v1/frames", key="investigator").json()["items"][0]["id"]
    assert archive.get(f"/v1/frames/{frame_id}/stored", key="investigator").status_code == 200
    assert archive.get("/v1/stats/storage", key="admin").status_code == 200
    assert archive.upload(key="admin", camera_id="cam-9").status_code == 201


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/login"])
def test_health_and_the_sign_in_page_need_no_key(archive: Archive, path: str) -> None:
    assert archive.client.get(path).status_code == 200


def test_keys_are_stored_only_as_sha256(archive: Archive) -> None:
    with archive.runtime.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT * FROM api_keys")).mappings().all()
    stored = " ".join(str(value) for row in rows for value in row.values())
    for key in archive.keys.values():
        assert key not in stored
        assert hashlib.sha256(key.encode()).hexdigest() in stored


def test_revoked_key_is_refused(archive: Archive) -> None:
    with unit_of_work(archive.runtime.session_factory) as session:
        revoke_key("investigator", session=session)
    assert archive.get("/v1/frames", key="investigator").status_code == 401


def test_key_names_are_unique_and_checked(archive: Archive) -> None:
    with unit_of_work(archive.runtime.session_factory) as session:
        with pytest.raises(InvalidInput, match="already exists"):
            create_key("admin", frozenset({Scope.read}), session=session)
        with pytest.raises(InvalidInput):
            create_key("bad name!", frozenset({Scope.read}), session=session)
        with pytest.raises(KeyNotFound):
            revoke_key("nobody", session=session)


def test_each_key_is_new_random_and_prefixed(archive: Archive) -> None:
    with unit_of_work(archive.runtime.session_factory) as session:
        _, one = create_key("one", frozenset({Scope.read}), session=session)
        _, two = create_key("two", frozenset({Scope.read}), session=session)
    assert one != two and one.startswith("cctv_") and len(one) > 40


def test_parse_scopes() -> None:
    assert parse_scopes("ingest, READ") == {Scope.ingest, Scope.read}
    with pytest.raises(ValueError, match="unknown scope 'write'"):
        parse_scopes("read,write")
    with pytest.raises(ValueError):
        parse_scopes(" , ")
