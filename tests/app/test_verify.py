"""`verify`: blobs without rows and rows without blobs are found, and repaired where possible."""

from __future__ import annotations

import os
import time

from app.verify import verify
from tests.app.conftest import Archive


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
