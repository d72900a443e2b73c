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

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work
from app.frames.models import Frame
from app.restorations.models import CachedRestoration
from app.storage import BlobStore

PREFIXES = ("frames/", "references/", "restored/")


@dataclass
class Report:
    orphan_blobs: list[str] = field(default_factory=list)
    frames_missing_blobs: list[str] = field(default_factory=list)
    cache_missing_blobs: list[int] = field(default_factory=list)
    repaired: int = 0

    @property
    def clean(self) -> bool:
        return not (self.orphan_blobs or self.frames_missing_blobs or self.cache_missing_blobs)


def _known_keys(session: Session) -> set[str]:
    keys: set[str] = set(session.scalars(sa.select(Frame.stored_key)))
    keys.update(k for k in session.scalars(sa.select(Frame.reference_key)) if k)
    keys.update(session.scalars(sa.select(CachedRestoration.blob_key)))
    return keys


def verify(
    *,
    session_factory: sessionmaker[Session],
    store: BlobStore,
    repair: bool = False,
    grace_s: float = 3600.0,
) -> Report:
    """Compare rows and blobs; with `repair`, delete orphan blobs and dangling cache rows."""
    report = Report()
    # Blobs listed first, rows read after: a blob written and committed in between is known.
    blobs = [key for prefix in PREFIXES for key in store.keys(prefix)]
    started = time.time()
    with session_factory() as session:
        known = _known_keys(session)
        frames = session.execute(sa.select(Frame.id, Frame.stored_key, Frame.reference_key))
        for frame_id, stored_key, ref_key in frames:
            if not store.exists(stored_key) or (ref_key and not store.exists(ref_key)):
                report.frames_missing_blobs.append(frame_id)
        entries = session.execute(sa.select(CachedRestoration.id, CachedRestoration.blob_key))
        report.cache_missing_blobs = [
            entry_id for entry_id, key in entries if not store.exists(key)
        ]
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
            session.execute(
                sa.delete(CachedRestoration).where(
                    CachedRestoration.id.in_(report.cache_missing_blobs)
                )
            )
        report.repaired += len(report.cache_missing_blobs)
    return report


def _age_s(store: BlobStore, key: str, now: float) -> float:
    """Seconds since the blob was written, where the store can tell (else 0: too young to
    delete unless the grace period is 0)."""
    modified = getattr(store, "modified_at", None)
    if modified is None:
        return 0.0
    return now - modified(key)
