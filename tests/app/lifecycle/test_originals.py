"""The originals window: uploads kept unchanged for its hours, then compacted unless held."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from app.config import Settings
from app.db import utcnow
from app.lifecycle.retention import sweep
from app.verify import verify
from tests.app.conftest import Archive
from tests.app.images import image_bytes


def compact(archive: Archive, *, hours_later: float) -> list[str]:
    runtime = archive.runtime
    report = sweep(
        session_factory=runtime.session_factory,
        store=runtime.store,
        settings=runtime.settings,
        now=utcnow() + timedelta(hours=hours_later),
    )
    assert report.frames == []  # retention is off: only originals go
    return [gone.frame_id for gone in report.originals]


def test_the_window_keeps_uploads_unchanged_then_compacts_all_but_held_ones(
    archive_factory: Any, settings_with: Callable[..., Settings]
) -> None:
    archive: Archive = archive_factory(settings_with(originals_hours=24))
    uploads = [image_bytes("JPEG", width=64, height=48, seed=i) for i in range(3)]
    ids = [archive.frame_id(data) for data in uploads]
    for frame_id, data in zip(ids, uploads, strict=True):
        response = archive.get(f"/v1/frames/{frame_id}/original", key="investigator")
        assert response.status_code == 200
        assert response.content == data  # byte for byte what the camera sent
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["x-source-frame-sha256"] == hashlib.sha256(data).hexdigest()
    reads = archive.get("/v1/audit", key="admin", params={"action": "frame.original.read"})
    assert [e["frame_id"] for e in reads.json()["items"]] == ids
    assert all(e["key_name"] == "investigator" for e in reads.json()["items"])
    stats = archive.get("/v1/stats/storage").json()
    stored = sum(archive.get(f"/v1/frames/{i}").json()["stored"]["bytes"] for i in ids)
    assert stats["totals"]["bytes_stored"] == stored + sum(len(d) for d in uploads)
    assert stats["cameras"][0]["bytes_originals"] == sum(len(d) for d in uploads)

    hold = archive.client.post(
        "/v1/holds",
        json={"frame_ids": [ids[1]], "case_reference": "CASE-3", "reason": "assault"},
        headers=archive.as_key("admin"),
    )
    assert hold.status_code == 201, hold.text
    assert compact(archive, hours_later=23) == []  # still inside the window
    assert sorted(compact(archive, hours_later=25)) == sorted([ids[0], ids[2]])

    gone = archive.get(f"/v1/frames/{ids[0]}/original")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "original_not_kept"
    assert archive.get(f"/v1/frames/{ids[1]}/original").content == uploads[1]
    assert archive.get(f"/v1/frames/{ids[0]}/stored").status_code == 200  # the frame stays
    originals = [key for key in archive.blobs() if key.startswith("originals/")]
    assert len(originals) == 1 and ids[1] in originals[0]
    compacted = archive.get("/v1/audit", key="admin", params={"action": "frame.original.delete"})
    assert sorted(e["frame_id"] for e in compacted.json()["items"]) == sorted([ids[0], ids[2]])
    stats = archive.get("/v1/stats/storage").json()
    assert stats["cameras"][0]["bytes_originals"] == len(uploads[1])


def test_a_camera_policy_overrides_the_default_window(archive: Archive) -> None:
    response = archive.client.put(
        "/v1/cameras/cam-9/policy", json={"originals_hours": 2}, headers=archive.as_key("admin")
    )
    assert response.status_code == 200, response.text
    kept = archive.frame_id(image_bytes(seed=1), camera_id="cam-9")
    not_kept = archive.frame_id(image_bytes(seed=2), camera_id="cam-1")  # default: 0 hours
    assert archive.get(f"/v1/frames/{kept}/original").status_code == 200
    assert archive.get(f"/v1/frames/{not_kept}/original").status_code == 404
    assert compact(archive, hours_later=3) == [kept]


def test_verify_knows_kept_originals_and_finds_orphan_ones(
    archive_factory: Any, settings_with: Callable[..., Settings]
) -> None:
    archive: Archive = archive_factory(settings_with(originals_hours=1))
    frame_id = archive.frame_id()
    assert archive.get(f"/v1/frames/{frame_id}").json()["original"]["kept"] is True
    runtime = archive.runtime
    assert verify(session_factory=runtime.session_factory, store=runtime.store).clean
    runtime.store.put("originals/ff/" + "f" * 32 + ".png", b"left by a crashed upload")
    report = verify(session_factory=runtime.session_factory, store=runtime.store)
    assert report.orphan_blobs == ["originals/ff/" + "f" * 32 + ".png"]
