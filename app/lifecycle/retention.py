"""The retention sweep: frames past their camera's retention or over its quota are deleted with
their blobs, cached restorations and every row that refers to them, oldest first, a bounded batch
per transaction; kept originals past the originals window are compacted. Held frames are never
touched. Evidence export bundles past CCTV_EXPORT_TTL_DAYS are deleted too (the export's record
stays, marked expired). Each deletion is audit-logged. Housekeeping runs it in the embedded
server, a periodic Celery task when scaled out, `cctv-archive purge` on demand.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.auth.service import record_event
from app.config import Settings
from app.db import SessionFactory, make_session_factory, on_commit, unit_of_work, utcnow
from app.frames.models import Frame
from app.lifecycle import repository
from app.lifecycle.policy import Policy, in_force
from app.storage import BlobStore, build_store

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:retention"


@dataclass(frozen=True)
class Gone:
    """A frame (or a frame's original) the sweep deletes."""

    frame_id: str
    camera_id: str
    captured_at: datetime
    bytes: int
    why: str  # "retention", "quota" or "originals window"


@dataclass(frozen=True)
class ExportGone:
    """An evidence export whose bundle the sweep deletes."""

    export_id: str
    finished_at: datetime
    frames: int
    bytes: int
    why: str


@dataclass
class SweepReport:
    frames: list[Gone] = field(default_factory=list)
    originals: list[Gone] = field(default_factory=list)
    exports: list[ExportGone] = field(default_factory=list)

    @property
    def bytes_freed(self) -> int:
        return sum(g.bytes for g in [*self.frames, *self.originals, *self.exports])


def frame_bytes(frame: Frame) -> int:
    original = frame.original_bytes if frame.original_key else 0
    return frame.stored_bytes + frame.reference_bytes + original


def sweep(
    *,
    session_factory: SessionFactory,
    store: BlobStore,
    settings: Settings,
    dry_run: bool = False,
    actor: str = SYSTEM_ACTOR,
    now: datetime | None = None,
) -> SweepReport:
    """One pass over every camera; with `dry_run`, what would go, deleting nothing."""
    now = now or utcnow()
    report = SweepReport()
    with session_factory() as session:
        overrides = repository.policies(session)
        cameras = repository.camera_ids(session)
    for camera_id in cameras:
        policy = in_force(overrides.get(camera_id), settings)
        run = _CameraSweep(
            camera_id, policy, session_factory, store, settings, dry_run, actor, report
        )
        run.by_age(now)
        run.by_quota()
        run.originals(now)
    if settings.export_ttl_days > 0:
        expire_exports(
            session_factory, store, settings, report, now=now, dry_run=dry_run, actor=actor
        )
    if report.frames or report.originals or report.exports:
        verb = "would delete" if dry_run else "deleted"
        logger.info(
            "retention: %s %d frames, %d originals and %d export bundles (%d bytes)",
            verb,
            len(report.frames),
            len(report.originals),
            len(report.exports),
            report.bytes_freed,
        )
    return report


def expire_exports(
    session_factory: SessionFactory,
    store: BlobStore,
    settings: Settings,
    report: SweepReport,
    *,
    now: datetime,
    dry_run: bool,
    actor: str,
) -> None:
    """Delete the bundles of exports finished more than CCTV_EXPORT_TTL_DAYS ago: the row is
    marked expired (and audit-logged) in the transaction, the blob deleted once it commits."""
    days = settings.export_ttl_days
    cutoff = now - timedelta(days=days)
    why = f"export kept {days} days (CCTV_EXPORT_TTL_DAYS)"
    batch = settings.retention_batch_size
    while True:
        with unit_of_work(session_factory) as session:
            repository.lock(session)
            # A dry run leaves the rows as they were: skip the ones it has listed already.
            skip = len(report.exports) if dry_run else 0
            found = repository.expired_exports(session, cutoff, batch + skip)[skip:]
            for export in found:
                finished = export.finished_at or cutoff  # never None: the query compares it
                report.exports.append(
                    ExportGone(export.id, finished, len(export.frame_ids), export.bytes, why)
                )
                if dry_run:
                    continue
                key, export.state, export.blob_key = export.blob_key, "expired", None
                export.updated_at = now
                record_event(
                    actor,
                    "export.expire",
                    None,
                    session=session,
                    detail=f"export {export.id}: bundle deleted, {why}; sha256 {export.sha256}",
                )
                if key:
                    on_commit(session, lambda key=key: store.delete(key))
        if len(found) < batch:
            return


def sweep_configured(settings: Settings) -> SweepReport:
    """One pass on the database and blob store `settings` name (the Celery beat task's way in:
    the worker reaches the lifecycle through this one function)."""
    return sweep(
        session_factory=make_session_factory(settings),
        store=build_store(settings),
        settings=settings,
    )


@dataclass
class _CameraSweep:
    camera_id: str
    policy: Policy
    session_factory: SessionFactory
    store: BlobStore
    settings: Settings
    dry_run: bool
    actor: str
    report: SweepReport
    planned: set[str] = field(default_factory=set)  # dry run: frames already listed

    @property
    def batch(self) -> int:
        return self.settings.retention_batch_size

    def by_age(self, now: datetime) -> None:
        if self.policy.retention_days <= 0:
            return
        cutoff = now - timedelta(days=self.policy.retention_days)
        why = f"retention ({self.policy.retention_days} days)"
        self._in_batches(
            lambda session, limit: repository.expired_frames(
                session, self.camera_id, cutoff, limit
            ),
            lambda session, frames: self._delete(session, frames, why),
        )

    def _in_batches(
        self,
        fetch: Callable[[Session, int], list[Frame]],
        act: Callable[[Session, list[Frame]], None],
    ) -> None:
        """`act` on what `fetch` finds (less what a dry run already listed), a batch per
        transaction under the sweep lock, until a batch comes back short."""
        while True:
            with unit_of_work(self.session_factory) as session:
                repository.lock(session)
                found = fetch(session, self.batch + len(self.planned))
                frames = [f for f in found if f.id not in self.planned]
                act(session, frames)
            if len(frames) < self.batch:
                return

    def by_quota(self) -> None:
        quota = self.policy.quota_bytes
        if quota is None:
            return
        why = f"quota ({quota} bytes)"
        while True:
            with unit_of_work(self.session_factory) as session:
                repository.lock(session)
                usage = repository.usage_by_camera(session).get(self.camera_id)
                kept = usage[1] if usage else 0
                if self.dry_run:
                    kept -= sum(
                        g.bytes for g in self.report.frames if g.camera_id == self.camera_id
                    )
                excess = kept - quota
                if excess <= 0:
                    return
                limit = self.batch + len(self.planned)
                candidates = repository.oldest_unheld(session, self.camera_id, limit)
                frames, freed = [], 0
                for frame in candidates:
                    if frame.id in self.planned:
                        continue
                    if freed >= excess or len(frames) >= self.batch:
                        break
                    frames.append(frame)
                    freed += frame_bytes(frame)
                self._delete(session, frames, why)
            if not frames:  # everything left is held: the quota cannot be met
                logger.warning(
                    "camera %s is %d bytes over its quota; the rest is under legal hold",
                    self.camera_id,
                    excess,
                )
                return

    def originals(self, now: datetime) -> None:
        cutoff = now - timedelta(hours=self.policy.originals_hours)
        why = f"originals window ({self.policy.originals_hours} hours)"
        self._in_batches(
            lambda session, limit: repository.expired_originals(
                session, self.camera_id, cutoff, limit
            ),
            lambda session, frames: self._drop_originals(session, frames, why),
        )

    def _drop_originals(self, session: Session, frames: list[Frame], why: str) -> None:
        """Drop the kept originals of `frames` (rows now, blobs once committed), audit-logged."""
        for frame in frames:
            gone = Gone(frame.id, frame.camera_id, frame.captured_at, frame.original_bytes, why)
            self.report.originals.append(gone)
            if self.dry_run:
                self.planned.add(frame.id)
                continue
            key = frame.original_key
            repository.drop_original(session, frame.id)
            record_event(
                self.actor,
                "frame.original.delete",
                frame.id,
                session=session,
                detail=f"{why}; original {frame.original_bytes} bytes",
            )
            on_commit(session, lambda key=key: self.store.delete(key))

    def _delete(self, session: Session, frames: list[Frame], why: str) -> None:
        """Delete `frames` (rows now, blobs once committed), each deletion audit-logged."""
        if not frames:
            return
        gone = [Gone(f.id, f.camera_id, f.captured_at, frame_bytes(f), why) for f in frames]
        self.report.frames.extend(gone)
        if self.dry_run:
            self.planned.update(g.frame_id for g in gone)
            return
        ids = [g.frame_id for g in gone]
        keys = repository.cache_keys(session, ids)
        keys += [k for f in frames for k in (f.stored_key, f.reference_key, f.original_key) if k]
        repository.delete_frames(session, ids)
        for g in gone:
            detail = f"{why}; camera {g.camera_id}; captured {g.captured_at.isoformat()}"
            record_event(self.actor, "frame.delete", g.frame_id, session=session, detail=detail)
        for key in keys:
            on_commit(session, lambda key=key: self.store.delete(key))
