"""Retention and quotas: exactly the expired, unheld frames go, with their blobs, cached
restorations and the rows that refer to them; each deletion is in the audit log."""

from __future__ import annotations

import sqlalchemy as sa

from app.lifecycle.retention import SweepReport, sweep
from tests.app.conftest import Archive
from tests.app.lifecycle.helpers import days_ago, frame_at


def run_sweep(archive: Archive, *, dry_run: bool = False) -> SweepReport:
    runtime = archive.runtime
    return sweep(
        session_factory=runtime.session_factory,
        store=runtime.store,
        settings=runtime.settings,
        dry_run=dry_run,
    )


def set_policy(archive: Archive, camera_id: str, **policy: int | None) -> None:
    response = archive.client.put(
        f"/v1/cameras/{camera_id}/policy", json=policy, headers=archive.as_key("admin")
    )
    assert response.status_code == 200, response.text


def frame_ids(archive: Archive) -> set[str]:
    with archive.runtime.engine.connect() as connection:
        return set(connection.execute(sa.text("SELECT id FROM frames")).scalars())


def audited(archive: Archive, action: str) -> list[str]:
    with archive.runtime.engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT frame_id FROM audit_log WHERE action = :a ORDER BY id"), {"a": action}
        )
        return list(rows.scalars())


def test_retention_deletes_exactly_the_expired_unheld_frames_with_blobs_and_cache(
    backed_archive: Archive,
) -> None:
    archive = backed_archive
    set_policy(archive, "cam-1", retention_days=30)
    oldest = frame_at(archive, 40, seed=1)
    old = frame_at(archive, 35, seed=2)
    held = frame_at(archive, 50, seed=3)
    recent = frame_at(archive, 5, seed=4)
    edge = frame_at(archive, 29.9, seed=5)  # inside the 30 days
    other_camera = frame_at(archive, 400, camera_id="cam-2", seed=6)  # default: keep forever
    hold = archive.client.post(
        "/v1/holds",
        json={"frame_ids": [held], "case_reference": "CASE-1", "reason": "robbery"},
        headers=archive.as_key("admin"),
    )
    assert hold.status_code == 201, hold.text
    restored = archive.get(f"/v1/frames/{oldest}/restored", params={"wait": 20})
    assert restored.status_code == 200, restored.text
    assert archive.count("restore_cache") == 1
    before = archive.blobs()
    assert any(oldest in key for key in before if key.startswith("restored/"))

    report = run_sweep(archive)

    assert sorted(g.frame_id for g in report.frames) == sorted([oldest, old])
    assert [g.frame_id for g in report.frames] == [oldest, old]  # oldest first
    assert frame_ids(archive) == {held, recent, edge, other_camera}
    after = archive.blobs()
    assert not [key for key in after if oldest in key or old in key]
    assert [k for k in before if oldest not in k and old not in k] == after
    assert archive.count("restore_cache") == 0
    assert archive.get(f"/v1/frames/{oldest}").status_code == 404
    assert sorted(audited(archive, "frame.delete")) == sorted([oldest, old])
    # A second pass finds nothing more to delete.
    assert run_sweep(archive).frames == []


def test_quota_deletes_oldest_unheld_frames_until_under_it(archive: Archive) -> None:
    ids = [frame_at(archive, 10 - i, seed=i) for i in range(5)]  # ids[0] is the oldest
    sizes = {i: archive.get(f"/v1/frames/{i}").json()["stored"]["bytes"] for i in ids}
    archive.client.post(
        "/v1/holds",
        json={"frame_ids": [ids[0]], "case_reference": "C-9", "reason": "evidence"},
        headers=archive.as_key("admin"),
    ).raise_for_status()
    # Room for the held frame and the two newest only.
    quota = sizes[ids[0]] + sizes[ids[3]] + sizes[ids[4]]
    set_policy(archive, "cam-1", quota_bytes=quota)

    report = run_sweep(archive)

    assert [g.frame_id for g in report.frames] == [ids[1], ids[2]]
    assert frame_ids(archive) == {ids[0], ids[3], ids[4]}
    assert all(g.why.startswith("quota") for g in report.frames)
    cameras = archive.get("/v1/cameras").json()
    assert cameras[0]["usage"]["bytes_kept"] == quota


def test_purge_dry_run_lists_what_goes_and_deletes_nothing(archive: Archive) -> None:
    set_policy(archive, "cam-1", retention_days=7)
    old = [frame_at(archive, 8 + i, seed=i) for i in range(3)]
    keep = frame_at(archive, 1, seed=9)
    blobs = archive.blobs()

    planned = run_sweep(archive, dry_run=True)

    assert sorted(g.frame_id for g in planned.frames) == sorted(old)
    assert frame_ids(archive) == {*old, keep}
    assert archive.blobs() == blobs
    assert audited(archive, "frame.delete") == []
    assert sorted(g.frame_id for g in run_sweep(archive).frames) == sorted(old)


def test_small_batches_still_delete_everything_expired(
    archive_factory: object, settings_with: object
) -> None:
    archive: Archive = archive_factory(settings_with(retention_days=3, retention_batch_size=2))  # type: ignore[operator]
    old = {frame_at(archive, 5 + i, seed=i) for i in range(5)}
    keep = frame_at(archive, 1, seed=10)
    report = run_sweep(archive)
    assert {g.frame_id for g in report.frames} == old
    assert frame_ids(archive) == {keep}


def test_a_range_hold_protects_frames_uploaded_after_it(archive: Archive) -> None:
    first = frame_at(archive, 40, seed=1)
    hold = archive.client.post(
        "/v1/holds",
        json={
            "camera_id": "cam-1",
            "from": days_ago(45),
            "to": days_ago(20),
            "case_reference": "CASE-7",
            "reason": "fraud",
        },
        headers=archive.as_key("admin"),
    )
    assert hold.status_code == 201, hold.text
    later = frame_at(archive, 30, seed=2)  # uploaded after the hold, inside its range
    outside = frame_at(archive, 50, seed=3)
    set_policy(archive, "cam-1", retention_days=10)

    report = run_sweep(archive)

    assert [g.frame_id for g in report.frames] == [outside]
    assert frame_ids(archive) == {first, later}
    hold_id = hold.json()["id"]
    assert archive.get(f"/v1/holds/{hold_id}").json()["frames_held"] == 2
    released = archive.client.delete(
        f"/v1/holds/{hold_id}", params={"reason": "case closed"}, headers=archive.as_key("admin")
    )
    assert released.status_code == 200, released.text
    assert sorted(g.frame_id for g in run_sweep(archive).frames) == sorted([first, later])
    assert audited(archive, "hold.create") == [None]
    assert audited(archive, "hold.release") == [None]
