"""The restore cache expires by TTL: expired entries are dropped on read and by the sweep."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from app.restorations.cache import sweep_expired_cache
from app.restorations.queue import Periodic
from tests.app.conftest import Archive, wait_for
from tests.app.images import image_bytes


def restored_blobs(archive: Archive) -> list[str]:
    return [key for key in archive.blobs() if key.startswith("restored/")]


def expire(archive: Archive, where: str = "1 = 1") -> None:
    with archive.runtime.engine.begin() as connection:
        connection.execute(
            sa.text(f"UPDATE restore_cache SET expires_at = '2000-01-01 00:00:00' WHERE {where}")
        )


def test_entries_expire_after_the_configured_ttl(archive_factory, settings) -> None:
    archive = archive_factory(settings.model_copy(update={"restore_cache_ttl_s": 3600}))
    frame_id = archive.frame_id()
    archive.get(f"/v1/frames/{frame_id}/restored")
    with archive.runtime.engine.connect() as connection:
        created, expires = connection.execute(
            sa.text("SELECT created_at, expires_at FROM restore_cache")
        ).one()
    from datetime import datetime

    ttl = datetime.fromisoformat(expires) - datetime.fromisoformat(created)
    assert ttl.total_seconds() == 3600


def test_expired_entry_is_restored_again_and_its_blob_removed_on_read(archive: Archive) -> None:
    frame_id = archive.frame_id()
    archive.get(f"/v1/frames/{frame_id}/restored")
    (old_blob,) = restored_blobs(archive)
    expire(archive)

    response = archive.get(f"/v1/frames/{frame_id}/restored")

    assert response.status_code == 200
    assert archive.count("restore_cache") == 1
    (new_blob,) = restored_blobs(archive)
    assert new_blob != old_blob
    assert not archive.runtime.store.exists(old_blob)


def test_sweep_deletes_expired_entries_and_their_blobs_only(archive: Archive) -> None:
    frame_id = archive.frame_id()
    archive.get(f"/v1/frames/{frame_id}/restored")
    archive.get(f"/v1/frames/{frame_id}/restored", params={"method": "bicubic"})
    expire(archive, "method = 'bicubic'")
    kept = restored_blobs(archive)

    removed = sweep_expired_cache(
        session_factory=archive.runtime.session_factory, store=archive.runtime.store
    )

    assert removed == 1
    assert archive.count("restore_cache") == 1
    assert len(restored_blobs(archive)) == 1 and restored_blobs(archive)[0] in kept


def test_sweep_works_through_more_entries_than_one_batch(archive: Archive) -> None:
    for seed in range(3):
        frame_id = archive.frame_id(image_bytes(width=32, height=32, seed=seed))
        archive.get(f"/v1/frames/{frame_id}/restored", params={"method": "bicubic"})
    expire(archive)
    runtime = archive.runtime
    assert (
        sweep_expired_cache(session_factory=runtime.session_factory, store=runtime.store, batch=2)
        == 3
    )
    assert archive.count("restore_cache") == 0
    assert restored_blobs(archive) == []


def test_the_running_server_sweeps_expired_entries_by_itself(archive_factory, settings) -> None:
    archive = archive_factory(settings.model_copy(update={"restore_cache_sweep_s": 0.05}))
    frame_id = archive.frame_id()
    archive.get(f"/v1/frames/{frame_id}/restored")
    assert archive.count("restore_cache") == 1
    expire(archive)
    wait_for(lambda: archive.count("restore_cache") == 0)
    assert restored_blobs(archive) == []


def test_sweeper_runs_the_sweep_periodically() -> None:
    calls = threading.Semaphore(0)

    def sweep() -> int:
        calls.release()
        return 0

    sweeper = Periodic(sweep, interval_s=0.01, name="sweep")
    sweeper.start()
    try:
        assert calls.acquire(timeout=5) and calls.acquire(timeout=5)
    finally:
        sweeper.stop()


def test_sweeper_survives_a_failing_sweep() -> None:
    calls: list[int] = []

    def sweep() -> int:
        calls.append(1)
        raise RuntimeError("database away")

    sweeper = Periodic(sweep, interval_s=0.01, name="sweep")
    sweeper.start()
    try:
        wait_for(lambda: len(calls) >= 2)
    finally:
        sweeper.stop()


def test_cache_entry_whose_blob_vanished_is_restored_again(archive: Archive) -> None:
    frame_id = archive.frame_id()
    archive.get(f"/v1/frames/{frame_id}/restored")
    for key in restored_blobs(archive):
        archive.runtime.store.delete(key)
    response = archive.get(f"/v1/frames/{frame_id}/restored")
    assert response.status_code == 200
    assert archive.count("restore_cache") == 1
    assert len(restored_blobs(archive)) == 1
