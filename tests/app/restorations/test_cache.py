"""The restore cache: a batch of restorations is written whole or not at all, and entries expire
by TTL: expired entries are dropped on read and by the sweep."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from PIL import Image

from app import migrate
from app.errors import StorageUnavailable
from app.restorations.cache import sweep_expired_cache, write_restorations
from app.restorations.provenance import Method, OutputFormat
from app.restorations.queue import Periodic
from app.storage.local import LocalStore
from models import Restorer
from tests.app.conftest import Archive, wait_for
from tests.app.images import decode, image_bytes


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


# -- which engine made a cached restoration ----------------------------------------------------


class UnderEngine:
    """The tiny model, served under another engine's name (as a server running that engine
    names it in every restoration it makes)."""

    def __init__(self, inner: Restorer, engine: str) -> None:
        self.inner = inner
        self.engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_cached_restoration_reports_the_engine_that_made_it(
    archive_factory, settings, tiny_restorer
) -> None:
    before = archive_factory(settings, restorer=UnderEngine(tiny_restorer, "torch"))
    frame_id = before.frame_id()
    made = before.get(f"/v1/frames/{frame_id}/restored")
    assert made.headers["x-restoration-engine"] == "torch"

    # The same archive served later by a server running another engine on the same weights.
    after = archive_factory(settings, restorer=UnderEngine(tiny_restorer, "openvino-int8"))
    cached = after.get(f"/v1/frames/{frame_id}/restored")

    assert cached.status_code == 200
    assert cached.content == made.content and len(restored_blobs(after)) == 1  # from the cache
    assert cached.headers["x-restoration-engine"] == "torch"
    assert decode(cached.content).text["cctv:Restoration-Engine"] == "torch"  # type: ignore[attr-defined]
    # What it restores now, it names with its own engine.
    fresh = after.get(f"/v1/frames/{frame_id}/restored", params={"format": "webp"})
    assert fresh.headers["x-restoration-engine"] == "openvino-int8"
    with after.runtime.engine.connect() as connection:
        engines = connection.execute(sa.text("SELECT format, engine FROM restore_cache")).all()
    assert sorted(engines) == [("png", "torch"), ("webp", "openvino-int8")]


def test_a_restoration_cached_before_engines_were_recorded_reports_unknown(
    archive_factory, settings
) -> None:
    archive = archive_factory(settings)
    frame_id = archive.frame_id()
    for method in ("edsr", "bicubic"):
        archive.get(f"/v1/frames/{frame_id}/restored", params={"method": method})
    # The entries as a server before migration 0009 left them: the column is new, and empty.
    archive.runtime.engine.dispose()
    command.downgrade(migrate.alembic_config(settings.database_url), "0008")
    migrate.upgrade(settings.database_url)
    with archive.runtime.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT engine FROM restore_cache")).all() == [
            (None,),
            (None,),
        ]

    edsr = archive.get(f"/v1/frames/{frame_id}/restored")
    bicubic = archive.get(f"/v1/frames/{frame_id}/restored", params={"method": "bicubic"})

    assert archive.count("restore_cache") == 2  # both still served from the cache
    assert edsr.headers["x-restoration-engine"] == "unknown"  # not the engine running now
    assert bicubic.headers["x-restoration-engine"] == "none"  # no network ran


def batch(n: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """`n` restored outputs and the frames they belong to (what provenance reads of a frame)."""
    rng = np.random.default_rng(0)
    outputs = {f"{i:032x}": rng.integers(0, 256, (40, 48, 3), dtype=np.uint8) for i in range(n)}
    frames = {
        fid: SimpleNamespace(
            id=fid,
            original_sha256="a" * 64,
            stored_sha256="b" * 64,
            degradation_id="bicubic-aa-x2/webp-lossless/v1",
        )
        for fid in outputs
    }
    return outputs, frames


@pytest.mark.parametrize("fmt", [OutputFormat.png, OutputFormat.webp])
def test_a_batch_is_written_whole_each_blob_holding_its_own_frames_pixels(
    tmp_path: Path, fmt: OutputFormat
) -> None:
    store = LocalStore(tmp_path)
    outputs, frames = batch(5)
    written = write_restorations(
        outputs,
        frames,
        Method.bicubic,
        fmt,
        store=store,
        restorer=None,  # type: ignore[arg-type]
    )
    assert list(written) == list(outputs)
    assert sorted(store.keys("restored/")) == sorted(entry.key for entry in written.values())
    for fid, entry in written.items():
        assert f"/{fid}/" in entry.key and store.get(entry.key) == entry.data
        pixels = np.asarray(Image.open(io.BytesIO(entry.data)).convert("RGB"))
        assert np.array_equal(pixels, outputs[fid])


class FailingStore(LocalStore):
    """Refuses the `nth` blob written; the others are written."""

    def __init__(self, root: Path, nth: int) -> None:
        super().__init__(root)
        self.nth, self.lock, self.calls = nth, threading.Lock(), 0

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        with self.lock:
            self.calls += 1
            refuse = self.calls == self.nth
        if refuse:
            raise StorageUnavailable("the store refused a write")
        super().put(key, data, content_type=content_type)


@pytest.mark.parametrize("size", [1, 6])
def test_a_failed_write_leaves_no_blob_of_its_batch_and_is_raised(
    tmp_path: Path, size: int
) -> None:
    store = FailingStore(tmp_path, nth=min(size, 3))
    outputs, frames = batch(size)
    with pytest.raises(StorageUnavailable):
        write_restorations(
            outputs,
            frames,
            Method.bicubic,
            OutputFormat.png,
            store=store,
            restorer=None,  # type: ignore[arg-type]
        )
    assert store.calls == size  # every write of the batch ended before any was undone
    assert list(store.keys("restored/")) == []
