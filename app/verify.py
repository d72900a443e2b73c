"""Consistency between metadata and blobs: what a crash or an outage can leave behind.

Ingest writes the blob before the row, and deletions remove the row before the blob, so the only
leftovers are blobs without a row (an upload that never committed, a blob whose deletion failed).
`verify` lists them and, with repair, deletes them once they are old enough not to belong to an
upload still in flight. Rows whose blob is gone are reported; cache entries among them are
dropped (they can be restored again), frames cannot be recovered and are only listed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from app.db import SessionFactory, unit_of_work
from app.frames import repository as frames_repository
from app.lifecycle import repository as lifecycle_repository
from app.restorations import repository as restorations_repository
from app.storage import BlobStore

PREFIXES = ("frames/", "references/", "restored/", "originals/", "exports/")


@dataclass
class Report:
    orphan_blobs: list[str] = field(default_factory=list)
    frames_missing_blobs: list[str] = field(default_factory=list)
    cache_missing_blobs: list[int] = field(default_factory=list)
    repaired: int = 0

    @property
    def clean(self) -> bool:
        return not (self.orphan_blobs or self.frames_missing_blobs or self.cache_missing_blobs)


def verify(
    *,
    session_factory: SessionFactory,
    store: BlobStore,
    repair: bool = False,
    grace_s: float = 3600.0,
) -> Report:
    """Compare rows and blobs; with `repair`, delete orphan blobs and dangling cache rows.

    Rows are checked against the blob listing, not one `exists` call per row (one request per
    row on S3); only a row whose key is not in the listing is looked up again, since its blob may
    have been written after the listing was taken.
    """
    report = Report()
    # Blobs listed first, rows read after: a blob written and committed in between is known.
    blobs = [key for prefix in PREFIXES for key in store.keys(prefix)]
    listed = set(blobs)
    started = time.time()

    def missing(key: str) -> bool:
        return key not in listed and not store.exists(key)

    with session_factory() as session:
        frames = frames_repository.blob_keys(session)
        entries = restorations_repository.blob_keys(session)
        kept = lifecycle_repository.kept_blob_keys(session)  # originals and export bundles
    known = {key for _, stored, ref in frames for key in (stored, ref) if key}
    known.update(key for _, key in entries)
    known.update(kept)
    report.frames_missing_blobs = [
        frame_id
        for frame_id, stored, ref in frames
        if missing(stored) or (ref is not None and missing(ref))
    ]
    report.cache_missing_blobs = [entry_id for entry_id, key in entries if missing(key)]
    report.orphan_blobs = [key for key in blobs if key not in known]
    if not repair:
        return report
    for key in report.orphan_blobs:
        # An orphan younger than the grace period may be an upload about to commit.
        if grace_s <= 0 or _age_s(store, key, started) >= grace_s:
            store.delete(key)
            report.repaired += 1
    if report.cache_missing_blobs:
        with unit_of_work(session_factory) as session:
            restorations_repository.delete_entries(session, report.cache_missing_blobs)
        report.repaired += len(report.cache_missing_blobs)
    return report


def _age_s(store: BlobStore, key: str, now: float) -> float:
    """Seconds since the blob was written, where the store can tell (else 0: too young to
    delete unless the grace period is 0)."""
    modified = getattr(store, "modified_at", None)
    if modified is None:
        return 0.0
    return now - modified(key)
