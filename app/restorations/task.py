"""The one restore task, run by the in-process pool and the Celery worker alike.

`run_restore_job` is idempotent: it restores only the items still pending, a restoration finished
twice keeps one cache entry, and every transaction is short (the model never runs inside one).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from app.db import SessionFactory, unit_of_work, utcnow
from app.frames import repository as frames_repository
from app.frames.models import Frame
from app.observability import metrics
from app.restorations import repository
from app.restorations.cache import (
    expiry,
    identity,
    record_restorations,
    restore_pixels,
    write_restorations,
)
from app.restorations.context import RestoreContext
from app.restorations.models import RestoreJob
from app.restorations.provenance import Method, OutputFormat
from app.restorations.repository import FINISHED

logger = logging.getLogger(__name__)


def run_restore_job(job_id: str, context: RestoreContext) -> None:
    """Restore every pending frame of job `job_id`, in batches of CCTV_RESTORE_BATCH_SIZE; safe
    to run more than once. A store outage or a model error is raised, not recorded."""
    with unit_of_work(context.session_factory) as session:
        job = repository.get_job(session, job_id)
        if job is None:
            logger.warning("restore job %s does not exist", job_id)
            return
        if job.state in FINISHED:
            return
        now = utcnow()
        job.state, job.attempts, job.updated_at = "running", job.attempts + 1, now
        job.started_at = job.started_at or now
        method, fmt = Method(job.method), OutputFormat(job.format)
        pending = repository.pending_frame_ids(session, job_id)

    size = context.settings.restore_batch_size
    batches = [pending[start : start + size] for start in range(0, len(pending), size)]
    # Each batch's restorations are saved (encoded, written, recorded) on a second thread while
    # the model restores the next batch: on a GPU the encode is most of a batch's time. One save
    # at a time, and each ends before the next begins; an error from either is raised once the
    # save in flight has ended, so a batch already restored is recorded or cleaned up, never
    # left half-saved.
    with ThreadPoolExecutor(1, thread_name_prefix="restore-save") as saver:
        saving: Future[None] | None = None
        for ids in batches:
            restored = _restore_batch(ids, method, fmt, context)
            if saving is not None:
                saving.result()
            saving = saver.submit(_save_batch, job_id, restored, method, fmt, context)
        if saving is not None:
            saving.result()

    with unit_of_work(context.session_factory) as session:
        job = repository.get_job(session, job_id)
        if job is None or job.state in FINISHED:
            return
        counts = repository.item_counts(session, job_id)
        job.state = "failed" if counts.total and counts.failed == counts.total else "done"
        if counts.failed:
            job.error = f"{counts.failed} of {counts.total} frames could not be restored"
        job.finished_at = job.updated_at = utcnow()
        _finished(job, done=counts.done, failed=counts.failed)


@dataclass(frozen=True)
class RestoredBatch:
    """A batch restored and not yet saved: pixels by frame id, the frames, those already in the
    cache (`fresh`) and why each other frame could not be restored."""

    outputs: dict[str, np.ndarray]
    frames: dict[str, Frame]
    fresh: list[str]
    failed: dict[str, str]


def _restore_batch(
    frame_ids: list[str],
    method: Method,
    fmt: OutputFormat,
    context: RestoreContext,
) -> RestoredBatch:
    """Restore the frames of `frame_ids` not already cached (renewing those that are)."""
    with unit_of_work(context.session_factory) as session:
        frames = frames_repository.by_ids(session, frame_ids)
        _, weights = identity(method, context.restorer)
        now, fresh = utcnow(), []
        for fid in frames:
            entry = repository.cache_entry(session, fid, weights, method.value, fmt.value)
            if entry is not None and entry.expires_at > now:
                # Asked for again: keep it for another TTL from now.
                entry.expires_at = expiry(now, context.settings)
                fresh.append(fid)
    missing = {fid: "the frame no longer exists" for fid in frame_ids if fid not in frames}
    todo = [frames[fid] for fid in frame_ids if fid in frames and fid not in fresh]
    outputs, failed = restore_pixels(todo, method, store=context.store, restorer=context.restorer)
    return RestoredBatch(outputs, frames, fresh, missing | failed)


def _save_batch(
    job_id: str, batch: RestoredBatch, method: Method, fmt: OutputFormat, context: RestoreContext
) -> None:
    """Encode and write the batch's restorations, then record them and the items' states."""
    store, restorer = context.store, context.restorer
    written = write_restorations(
        batch.outputs, batch.frames, method, fmt, store=store, restorer=restorer
    )
    with unit_of_work(context.session_factory) as session:
        record_restorations(
            session, written, method, fmt, store=store, restorer=restorer, settings=context.settings
        )
        repository.set_items(session, job_id, [*written, *batch.fresh], "done")
        for fid, reason in batch.failed.items():
            repository.set_items(session, job_id, [fid], "failed", reason)
        job = repository.get_job(session, job_id)
        if job is not None:
            job.updated_at = utcnow()


def fail_restore_job(job_id: str, reason: str, *, session_factory: SessionFactory) -> None:
    """Mark job `job_id` failed with `reason`, and its pending frames with it (a job must never
    stay running forever). A finished job is left as it is."""
    with unit_of_work(session_factory) as session:
        job = repository.get_job(session, job_id)
        if job is None or job.state in FINISHED:
            return
        job.state, job.error = "failed", reason
        job.finished_at = job.updated_at = utcnow()
        repository.fail_pending_items(session, job_id, reason)
        counts = repository.item_counts(session, job_id)
        _finished(job, done=counts.done, failed=counts.failed)


def _finished(job: RestoreJob, *, done: int, failed: int) -> None:
    """The metrics and the log line of a job that just ended (the log line carries the id of the
    request that started it, where one did)."""
    assert job.finished_at is not None
    metrics.record_restore_job(
        job.state,
        done=done,
        failed=failed,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )
    logger.info(
        "restore job %s %s: %d frames restored, %d failed",
        job.id,
        job.state,
        done,
        failed,
        extra={"job_id": job.id, "job_state": job.state},
    )
