"""Listing, metadata and the stored frame: GET /v1/frames, /v1/frames/{id}, .../stored."""

from __future__ import annotations

import hashlib

from tests.app.conftest import Archive
from tests.app.images import decode, image_bytes


def upload_series(archive: Archive) -> dict[str, str]:
    """Five frames over two cameras at known times; returns id by "camera@hour"."""
    ids = {}
    for seed, (camera, hour) in enumerate(
        [("cam-1", 10), ("cam-2", 11), ("cam-1", 12), ("cam-1", 13), ("cam-2", 14)]
    ):
        ids[f"{camera}@{hour}"] = archive.frame_id(
            image_bytes(width=64, height=48, seed=seed),
            camera_id=camera,
            captured_at=f"2024-05-01T{hour}:00:00Z",
        )
    return ids


def test_list_returns_frames_in_capture_order(archive: Archive) -> None:
    ids = upload_series(archive)
    page = archive.get("/v1/frames").json()
    assert [frame["id"] for frame in page["items"]] == list(ids.values())
    assert page["next_cursor"] is None


def test_list_filters_by_camera_and_half_open_time_range(archive: Archive) -> None:
    ids = upload_series(archive)
    params = {"camera_id": "cam-1", "from": "2024-05-01T11:00:00Z", "to": "2024-05-01T13:00:00Z"}
    page = archive.get("/v1/frames", params=params).json()
    assert [frame["id"] for frame in page["items"]] == [ids["cam-1@12"]]


def test_cursor_pagination_visits_every_frame_once(archive: Archive) -> None:
    ids = upload_series(archive)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = archive.get("/v1/frames", params=params).json()
        seen += [frame["id"] for frame in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(ids.values())
    assert pages == 3


def test_pagination_is_stable_for_frames_captured_at_the_same_instant(archive: Archive) -> None:
    ids = {archive.frame_id(image_bytes(width=32, height=32, seed=s)) for s in range(5)}
    first = archive.get("/v1/frames", params={"limit": 3}).json()
    rest = archive.get("/v1/frames", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    listed = [f["id"] for f in first["items"] + rest["items"]]
    assert sorted(listed) == sorted(ids) and len(listed) == 5


def test_bad_cursor_is_422(archive: Archive) -> None:
    response = archive.get("/v1/frames", params={"cursor": "not-a-cursor"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


def test_bad_time_filter_is_422(archive: Archive) -> None:
    response = archive.get("/v1/frames", params={"from": "last tuesday"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_get_frame_returns_its_metadata(archive: Archive) -> None:
    uploaded = archive.upload(image_bytes(seed=3), tags="lobby").json()
    response = archive.get(f"/v1/frames/{uploaded['id']}")
    assert response.status_code == 200
    assert response.json() == uploaded
    assert response.json()["links"]["restored"] == f"/v1/frames/{uploaded['id']}/restored"


def test_unknown_frame_is_404_everywhere(archive: Archive) -> None:
    for suffix in ("", "/stored", "/restored"):
        response = archive.get(f"/v1/frames/0123456789abcdef0123456789abcdef{suffix}")
        assert response.status_code == 404, suffix
        assert response.json()["error"]["code"] == "frame_not_found"


def test_stored_returns_the_small_frame_as_stored(archive: Archive) -> None:
    frame = archive.upload(image_bytes("JPEG", width=800, height=600)).json()
    response = archive.get(f"/v1/frames/{frame['id']}/stored")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert hashlib.sha256(response.content).hexdigest() == frame["stored"]["sha256"]
    assert response.headers["x-stored-sha256"] == frame["stored"]["sha256"]
    assert response.headers["x-source-frame-sha256"] == frame["original"]["sha256"]
    assert response.headers["etag"] == f'"{frame["stored"]["sha256"]}"'
    assert decode(response.content).size == (200, 200)
