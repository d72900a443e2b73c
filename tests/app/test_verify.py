"""`verify`: blobs without rows and rows without blobs are found, and repaired where possible."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from app.verify import verify
from tests.app.conftest import Archive
from tests.app.images import image_bytes


def run(archive: Archive, **kwargs: object):
    return verify(
        session_factory=archive.runtime.session_factory, store=archive.runtime.store, **kwargs
    )  # type: ignore[arg-type]


def test_a_consistent_archive_is_clean(archive: Archive) -> None:
    frame_id = archive.frame_id()
    archive.get(f"/v1/frames/{frame_id}/restored")
    assert run(archive).clean


def test_orphan_blobs_are_found_and_old_ones_repaired(archive: Archive) -> None:
    store = archive.runtime.store
    store.put("frames/aa/aa-orphan-old.png", b"from an upload that never committed")
    store.put("restored/bb/young.png", b"may be an upload about to commit")
    old = time.time() - 7200
    os.utime(store.root / "frames/aa/aa-orphan-old.png", (old, old))  # type: ignore[attr-defined]

    report = run(archive)
    assert sorted(report.orphan_blobs) == ["frames/aa/aa-orphan-old.png", "restored/bb/young.png"]

    repaired = run(archive, repair=True)
    assert repaired.repaired == 1
    assert archive.blobs() == ["restored/bb/young.png"]


def test_rows_whose_blob_is_gone_are_reported_and_cache_rows_dropped(archive: Archive) -> None:
    frame_id = archive.frame_id()
    archive.get(f"/v1/frames/{frame_id}/restored")
    for key in archive.blobs():
        archive.runtime.store.delete(key)

    report = run(archive, repair=True)

    assert report.frames_missing_blobs == [frame_id]
    assert len(report.cache_missing_blobs) == 1
    assert archive.count("restore_cache") == 0
    assert archive.count("frames") == 1  # evidence rows are never removed by a repair


class CountingStore:
    """The archive's store, counting `exists` calls; `hide` keeps keys out of the listing (as if
    written after verify listed the store)."""

    def __init__(self, inner: Any, hide: frozenset[str] = frozenset()) -> None:
        self.inner, self.hide, self.exists_calls = inner, hide, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def keys(self, prefix: str = "") -> Iterator[str]:
        return (key for key in self.inner.keys(prefix) if key not in self.hide)

    def exists(self, key: str) -> bool:
        self.exists_calls += 1
        return bool(self.inner.exists(key))


def test_rows_are_checked_against_the_listing_not_one_request_each(archive: Archive) -> None:
    for seed in range(3):
        frame_id = archive.frame_id(image_bytes(seed=seed))
        assert archive.get(f"/v1/frames/{frame_id}/restored").status_code == 200
    store = CountingStore(archive.runtime.store)

    report = verify(session_factory=archive.runtime.session_factory, store=store)

    assert report.clean
    assert store.exists_calls == 0  # 6 rows, 0 per-row requests (one S3 request each before)


def test_a_blob_written_after_the_listing_is_not_reported_missing(archive: Archive) -> None:
    frame_id = archive.frame_id()
    archive.get(f"/v1/frames/{frame_id}/restored")
    late = frozenset(archive.blobs())
    store = CountingStore(archive.runtime.store, hide=late)

    report = verify(session_factory=archive.runtime.session_factory, store=store, repair=True)

    assert report.clean and report.repaired == 0
    assert store.exists_calls == len(late)  # only the rows missing from the listing
    assert archive.count("restore_cache") == 1
