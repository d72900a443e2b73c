"""GET /v1/audit returns what the reads and changes wrote: who, what, when and from where."""

from __future__ import annotations

from datetime import timedelta

from app.auth.audit import verify_audit_chain
from app.db import utcnow
from tests.app.conftest import Archive
from tests.app.images import image_bytes


def test_the_audit_api_returns_the_reads_with_their_client_address(archive: Archive) -> None:
    first, second = (archive.frame_id(image_bytes(seed=i)) for i in range(2))
    before = utcnow() - timedelta(seconds=1)
    archive.get(f"/v1/frames/{first}/stored", key="investigator").raise_for_status()
    archive.get(f"/v1/frames/{second}/stored", key="operator").raise_for_status()
    archive.get(f"/v1/frames/{first}/stored", key="operator").raise_for_status()

    response = archive.get("/v1/audit", key="admin", params={"frame_id": first})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(e["key_name"], e["action"]) for e in items] == [
        ("investigator", "frame.stored.read"),
        ("operator", "frame.stored.read"),
    ]
    assert all(e["client_address"] == "testclient" for e in items)  # Starlette's client host

    by_key = archive.get("/v1/audit", key="admin", params={"key": "operator"}).json()["items"]
    assert [e["frame_id"] for e in by_key] == [second, first]
    window = {"from": before.isoformat(), "to": (utcnow() + timedelta(1)).isoformat()}
    assert len(archive.get("/v1/audit", key="admin", params=window).json()["items"]) == 3
    assert (
        archive.get("/v1/audit", key="admin", params={"to": before.isoformat()}).json()["items"]
        == []
    )

    pages, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = archive.get("/v1/audit", key="admin", params=params).json()
        pages.append([e["id"] for e in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [[1, 2], [3]]

    with archive.runtime.session_factory() as session:
        assert verify_audit_chain(session).ok  # the address is inside each row's hash


def test_the_audit_api_is_admin_only_and_refuses_bad_cursors(archive: Archive) -> None:
    assert archive.get("/v1/audit", key="investigator").status_code == 403
    response = archive.get("/v1/audit", key="admin", params={"cursor": "abc"})
    assert response.status_code == 422
    assert "cursor" in response.json()["error"]["message"]
