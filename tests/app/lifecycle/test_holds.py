"""Legal holds through the API: placed by admins, listed, released with a reason, audit-logged."""

from __future__ import annotations

from app.runtime import housekeeping
from tests.app.conftest import Archive
from tests.app.lifecycle.helpers import frame_at


def place(archive: Archive, body: dict[str, object], key: str = "admin") -> dict[str, object]:
    response = archive.client.post("/v1/holds", json=body, headers=archive.as_key(key))
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_holds_are_listed_released_once_with_a_reason_and_audited(archive: Archive) -> None:
    frame = frame_at(archive, 3)
    hold = place(archive, {"frame_ids": [frame], "case_reference": "CR-1", "reason": "theft"})
    assert hold["frames_held"] == 1 and hold["frame_ids"] == [frame] and hold["active"]
    listed = archive.get("/v1/holds", key="investigator").json()["items"]
    assert [h["id"] for h in listed] == [hold["id"]]

    path = f"/v1/holds/{hold['id']}"
    no_reason = archive.client.delete(path, headers=archive.as_key("admin"))
    assert no_reason.status_code == 422
    assert "reason" in no_reason.json()["error"]["message"]
    released = archive.client.delete(
        path, params={"reason": "case closed"}, headers=archive.as_key("admin")
    )
    assert released.status_code == 200
    assert released.json()["release_reason"] == "case closed"
    assert released.json()["released_by"] == "admin"
    again = archive.client.delete(path, params={"reason": "x"}, headers=archive.as_key("admin"))
    assert again.status_code == 409
    assert archive.get("/v1/holds").json()["items"] == []
    assert len(archive.get("/v1/holds", params={"active": "false"}).json()["items"]) == 1

    log = archive.get("/v1/audit", key="admin", params={"frame_id": frame}).json()["items"]
    assert [e["action"] for e in log] == ["hold.create", "hold.release"]
    changes = archive.get("/v1/audit", key="admin", params={"key": "admin"}).json()["items"]
    assert any("case closed" in e["detail"] for e in changes)


def test_only_admins_place_or_release_holds(archive: Archive) -> None:
    frame = frame_at(archive, 3)
    body = {"frame_ids": [frame], "case_reference": "CR-2", "reason": "r"}
    response = archive.client.post("/v1/holds", json=body, headers=archive.as_key("investigator"))
    assert response.status_code == 403
    bad = archive.client.post(
        "/v1/holds", json={"frame_ids": [frame], "reason": "r"}, headers=archive.as_key("admin")
    )
    assert bad.status_code == 422
    assert "case_reference" in bad.json()["error"]["message"]
    assert archive.count("legal_holds") == 0


def test_housekeeping_applies_retention_in_the_embedded_server(archive: Archive) -> None:
    archive.client.put(
        "/v1/cameras/cam-1/policy", json={"retention_days": 10}, headers=archive.as_key("admin")
    ).raise_for_status()
    old, held, new = (
        frame_at(archive, 20, seed=1),
        frame_at(archive, 25, seed=2),
        frame_at(archive, 1, seed=3),
    )
    place(archive, {"frame_ids": [held], "case_reference": "CR-3", "reason": "r"})
    housekeeping(archive.runtime)
    assert archive.get(f"/v1/frames/{old}").status_code == 404
    assert archive.get(f"/v1/frames/{held}").status_code == 200
    assert archive.get(f"/v1/frames/{new}").status_code == 200
