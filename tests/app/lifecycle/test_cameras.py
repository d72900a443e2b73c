"""GET /v1/cameras and PUT /v1/cameras/{id}/policy: the policy in force, usage, projection."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from app.config import Settings
from tests.app.conftest import Archive
from tests.app.lifecycle.helpers import frame_at


def test_cameras_show_the_defaults_their_overrides_and_projected_storage(
    archive_factory: Any, settings_with: Callable[..., Settings]
) -> None:
    archive: Archive = archive_factory(settings_with(retention_days=14, originals_hours=0))
    ids = [frame_at(archive, 1, seed=i) for i in range(3)]
    frame_at(archive, 1, camera_id="cam-2", seed=9)
    stored = sum(archive.get(f"/v1/frames/{i}").json()["stored"]["bytes"] for i in ids)
    response = archive.client.put(
        "/v1/cameras/cam-1/policy",
        json={"retention_days": 30, "quota_bytes": 10**9},
        headers=archive.as_key("admin"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["updated_by"] == "admin"

    cameras = {c["camera_id"]: c for c in archive.get("/v1/cameras").json()}
    cam1, cam2 = cameras["cam-1"], cameras["cam-2"]
    assert cam1["policy"] == {"retention_days": 30, "quota_bytes": 10**9, "originals_hours": 0}
    assert cam1["overrides"]["retention_days"] == 30
    assert cam2["policy"]["retention_days"] == 14 and cam2["overrides"] is None
    assert cam1["usage"]["frames"] == 3 and cam1["usage"]["bytes_kept"] == stored
    # All three were ingested today: the daily rate is a seventh of them, x 30 days.
    assert cam1["projected_bytes"] == math.ceil(stored / 7 * 30)

    stats = {c["camera_id"]: c for c in archive.get("/v1/stats/storage").json()["cameras"]}
    assert stats["cam-1"]["retention_days"] == 30
    assert stats["cam-1"]["projected_bytes"] == cam1["projected_bytes"]
    assert stats["cam-2"]["retention_days"] == 14


def test_policy_changes_are_admin_only_validated_and_audited(archive: Archive) -> None:
    path = "/v1/cameras/cam-1/policy"
    assert archive.client.put(path, json={}, headers=archive.as_key("operator")).status_code == 403
    bad = archive.client.put(path, json={"retention_days": -1}, headers=archive.as_key("admin"))
    assert bad.status_code == 422
    assert "retention_days" in bad.json()["error"]["message"]
    unknown = archive.client.put(path, json={"keep": 1}, headers=archive.as_key("admin"))
    assert unknown.status_code == 422
    assert (
        archive.client.put(
            path, json={"originals_hours": 6}, headers=archive.as_key("admin")
        ).status_code
        == 200
    )
    forever = archive.get("/v1/cameras").json()[0]
    assert forever["policy"]["retention_days"] == 0 and forever["projected_bytes"] is None
    log = archive.get("/v1/audit", key="admin", params={"action": "policy.set"}).json()["items"]
    assert len(log) == 1 and "originals_hours=6" in log[0]["detail"]
