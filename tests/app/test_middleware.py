"""The key-before-body middleware: a POST's key is looked up once per request, and the route
sees the very caller the middleware found."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from tests.app.conftest import Archive


@contextmanager
def key_lookups(archive: Archive) -> Iterator[list[str]]:
    """The SQL statements that read the api_keys table while the block runs."""
    seen: list[str] = []

    def record(conn, cursor, statement: str, *args: object) -> None:
        if "FROM api_keys" in statement:
            seen.append(statement)

    event.listen(archive.runtime.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(archive.runtime.engine, "before_cursor_execute", record)


def test_an_upload_looks_its_key_up_once(archive: Archive) -> None:
    with key_lookups(archive) as seen:
        response = archive.upload()
    assert response.status_code == 201, response.text
    assert len(seen) == 1


def test_a_read_without_a_body_still_looks_its_key_up(archive: Archive) -> None:
    frame_id = archive.frame_id()
    with key_lookups(archive) as seen:
        assert archive.get(f"/v1/frames/{frame_id}").status_code == 200
    assert len(seen) == 1


def test_the_route_still_checks_the_scope_of_the_key_the_middleware_found(
    archive: Archive,
) -> None:
    # The investigator's key is valid (the middleware lets the body in) but cannot ingest.
    response = archive.upload(key="investigator")
    assert response.status_code == 403
    assert "ingest" in response.json()["error"]["message"]


def test_an_unknown_key_is_refused_before_the_body(archive: Archive) -> None:
    archive.keys["nobody"] = "cctv_not-a-key"
    response = archive.upload(key="nobody")
    assert response.status_code == 401
    assert response.headers["connection"] == "close"
