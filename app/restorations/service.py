"""Restore jobs, on-demand restores, and the one restore task.

`run_restore_job` is what both the in-process pool and the Celery worker run. It is idempotent:
it restores only the items still pending, a restoration finished twice keeps one cache entry,
and every transaction is short (the model never runs inside one). Jobs are handed to a queue only
after their rows are committed.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.auth.schemas import Principal
from app.config import Settings
from app.db import unit_of_work, utcnow
from app.errors import (
    FrameNotFound,
    InvalidInput,
    JobNotFound,
    ModelIncompatible,
    QueueUnavailable,
    RestoreFailed,
)
from app.frames import repository as frames_repository
from app.frames.models import Frame
from app.frames.service import get_frame
from app.restorations import repository
from app.restorations.cache import (
    Restored,
    SessionFactory,
    cached,
    expiry,
    identity,
    provenance_of,
    restore_pixels,
    save_restorations,
)
from app.restorations.model import can_restore
from app.restorations.models import RestoreJob, RestoreJobItem
from app.restorations.provenance import Method, OutputFormat
from app.restorations.queue import RestoreQueue
from app.restorations.schemas import (
    JobError,
    JobItem,
    JobLinks,
    RestoreJobCreate,
    RestoreJobRead,
)
from app.storage import BlobStore
from models import Restorer

logger = logging.getLogger(__name__)

FINISHED = ("done", "failed")


@dataclass(frozen=True)
class Pending:
    job_id: str


def check_restorable(frames: list[Frame], method: Method, restorer: Restorer) -> None:
    """ModelIncompatible unless the model was trained for how every frame is stored."""
    if method is Method.bicubic:
        return
    wrong = [frame for frame in frames if not can_restore(restorer, frame.degradation_id)]
    if wrong:
        raise ModelIncompatible(
            f"model {restorer.name!r} was trained on frames stored as "
            f"{restorer.degradation_id!r}; frame {wrong[0].id} is stored as "
            f"{wrong[0].degradation_id!r} (use method=bicubic, or a model trained for it)"
        )


def run_restore_job(
    job_id: str,
    *,
    session_factory: SessionFactory,
    store: BlobStore,
    restorer: Restorer,
    settings: Settings,
) -> None:
    """Restore every pending frame of job `job_id`, in batches; safe to run more than once."""
    with unit_of_work(session_factory) as session:
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

    size = settings.restore_batch_size
    for start in range(0, len(pending), size):
        _restore_batch(
            job_id,
            pending[start : start + size],
            method,
            fmt,
            session_factory=session_factory,
            store=store,
            restorer=restorer,
            settings=settings,
        )

    with unit_of_work(session_factory) as session:
        job = repository.get_job(session, job_id)
        if job is None or job.state in FINISHED:
            return
        counts = repository.item_counts(session, job_id)
        job.state = "failed" if counts.total and counts.failed == counts.total else "done"
        if counts.failed:
            job.error = f"{counts.failed} of {counts.total} frames could not be restored"
        job.finished_at = job.updated_at = utcnow()


def _restore_batch(
    job_id: str,
    frame_ids: list[str],
    method: Method,
    fmt: OutputFormat,
    *,
    session_factory: SessionFactory,
    store: BlobStore,
    restorer: Restorer,
    settings: Settings,
) -> None:
    with unit_of_work(session_factory) as session:
        frames = frames_repository.by_ids(session, frame_ids)
        _, weights = identity(method, restorer)
        now, fresh = utcnow(), []
        for fid in frames:
            entry = repository.cache_entry(session, fid, weights, method.value, fmt.value)
            if entry is not None and entry.expires_at > now:
                # Asked for again: keep it for another TTL from now.
                entry.expires_at = expiry(now, settings)
                fresh.append(fid)
    errors = {fid: "the frame no longer exists" for fid in frame_ids if fid not in frames}
    todo = [frames[fid] for fid in frame_ids if fid in frames and fid not in fresh]
    outputs, failed = restore_pixels(todo, method, store=store, restorer=restorer)
    save_restorations(
        outputs,
        frames,
        method,
        fmt,
        session_factory=session_factory,
        store=store,
        restorer=restorer,
        settings=settings,
        job_id=job_id,
        errors=errors | failed,
        already_cached=fresh,
    )


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


# -- jobs -----------------------------------------------------------------------------------


def _new_job(
    session: Session, frame_ids: list[str], method: Method, fmt: OutputFormat, requested_by: str
) -> RestoreJob:
    now = utcnow()
    job = RestoreJob(
        id=uuid.uuid4().hex,
        state="queued",
        method=method.value,
        format=fmt.value,
        requested_by=requested_by,
        created_at=now,
        updated_at=now,
        attempts=0,
    )
    session.add(job)
    session.add_all(
        RestoreJobItem(job_id=job.id, frame_id=fid, position=i, state="pending")
        for i, fid in enumerate(frame_ids)
    )
    return job


def submit_job(job_id: str, *, queue: RestoreQueue, session_factory: SessionFactory) -> None:
    """Queue a committed job; if the queue refuses it, the job is failed and the error raised."""
    try:
        queue.submit(job_id)
    except QueueUnavailable as exc:
        fail_restore_job(job_id, f"not queued: {exc.message}", session_factory=session_factory)
        raise


def create_job(
    request: RestoreJobCreate,
    *,
    principal: Principal,
    session_factory: SessionFactory,
    queue: RestoreQueue,
    restorer: Restorer,
    settings: Settings,
) -> str:
    """Create and queue one job for a list of frames or a camera's time range; returns its id."""
    limit = settings.restore_job_max_frames
    with unit_of_work(session_factory) as session:
        if request.frame_ids is not None:
            frame_ids = list(dict.fromkeys(request.frame_ids))
        else:
            assert request.camera_id is not None
            frame_ids = frames_repository.ids_in_range(
                session,
                camera_id=request.camera_id,
                start=request.start,
                end=request.end,
                limit=limit + 1,
            )
            if not frame_ids:
                raise InvalidInput(f"camera {request.camera_id!r} has no frames in that range")
        if len(frame_ids) > limit:
            raise InvalidInput(f"a job restores at most {limit} frames; narrow the selection")
        frames = frames_repository.by_ids(session, frame_ids)
        missing = [fid for fid in frame_ids if fid not in frames]
        if missing:
            raise FrameNotFound(f"no frame {missing[0]!r} ({len(missing)} of the ids are unknown)")
        check_restorable(list(frames.values()), request.method, restorer)
        job_id = _new_job(session, frame_ids, request.method, request.format, principal.name).id
    submit_job(job_id, queue=queue, session_factory=session_factory)
    return job_id


def job_view(job_id: str, *, session: Session) -> RestoreJobRead:
    job = repository.get_job(session, job_id)
    if job is None:
        raise JobNotFound(f"no restore job {job_id!r}")
    items = repository.items(session, job_id)
    counts = {
        state: sum(1 for item in items if item.state == state)
        for state in ("pending", "done", "failed")
    }
    query = f"?method={job.method}&format={job.format}"
    return RestoreJobRead(
        id=job.id,
        state=job.state,
        method=Method(job.method),
        format=OutputFormat(job.format),
        total=len(items),
        done=counts["done"],
        failed=counts["failed"],
        pending=counts["pending"],
        errors=[
            JobError(frame_id=item.frame_id, message=item.error or "failed")
            for item in items
            if item.state == "failed"
        ],
        error=job.error,
        items=[
            JobItem(
                frame_id=item.frame_id,
                state=item.state,
                restored=f"/v1/frames/{item.frame_id}/restored{query}",
            )
            for item in items
        ],
        requested_by=job.requested_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        links=JobLinks(self=f"/v1/restore-jobs/{job.id}"),
    )


def resume_unfinished_jobs(*, queue: RestoreQueue, session_factory: SessionFactory) -> int:
    """Queue again the jobs a stopped server left queued or running (in-process pool only:
    Celery keeps its own messages until a worker acknowledges them)."""
    with session_factory() as session:
        job_ids = repository.unfinished_job_ids(session)
    for count, job_id in enumerate(job_ids):
        try:
            queue.submit(job_id)
        except QueueUnavailable:
            logger.warning(
                "restore queue full; %d unfinished jobs wait for the next start",
                len(job_ids) - count,
            )
            return count
    return len(job_ids)


# -- on demand (GET /v1/frames/{id}/restored) -------------------------------------------


def restore_or_enqueue(
    frame_id: str,
    method: Method,
    fmt: OutputFormat,
    *,
    principal: Principal,
    session_factory: SessionFactory,
    store: BlobStore,
    restorer: Restorer,
    queue: RestoreQueue,
    settings: Settings,
) -> Restored | Pending:
    """From the cache; bicubic right now (it is cheap); else a job (an existing one for this
    frame if there is one) whose result the caller may wait for."""
    created = False
    with unit_of_work(session_factory) as session:
        frame = get_frame(frame_id, session=session)
        check_restorable([frame], method, restorer)
        hit = cached(frame, method, fmt, session=session, store=store, restorer=restorer)
        if hit is not None:
            return hit
        if method is Method.edsr:
            job = repository.active_job_for(session, frame.id, method.value, fmt.value)
            if job is None:
                job, created = _new_job(session, [frame.id], method, fmt, principal.name), True
            job_id = job.id
    if method is Method.bicubic:
        return restore_now(
            frame,
            method,
            fmt,
            session_factory=session_factory,
            store=store,
            restorer=restorer,
            settings=settings,
        )
    if created:
        submit_job(job_id, queue=queue, session_factory=session_factory)
    return Pending(job_id)


def restore_now(
    frame: Frame,
    method: Method,
    fmt: OutputFormat,
    *,
    session_factory: SessionFactory,
    store: BlobStore,
    restorer: Restorer,
    settings: Settings,
) -> Restored:
    outputs, errors = restore_pixels([frame], method, store=store, restorer=restorer)
    if frame.id in errors:
        raise RestoreFailed(f"frame {frame.id} could not be restored: {errors[frame.id]}")
    encoded = save_restorations(
        outputs,
        {frame.id: frame},
        method,
        fmt,
        session_factory=session_factory,
        store=store,
        restorer=restorer,
        settings=settings,
    )
    return Restored(encoded[frame.id], fmt.media_type, provenance_of(frame, method, restorer))


def poll_restoration(
    frame_id: str,
    job_id: str,
    method: Method,
    fmt: OutputFormat,
    *,
    session_factory: SessionFactory,
    store: BlobStore,
    restorer: Restorer,
) -> Restored | Pending:
    """The restoration if job `job_id` has made it; RestoreFailed if it could not."""
    with unit_of_work(session_factory) as session:
        frame = get_frame(frame_id, session=session)
        hit = cached(frame, method, fmt, session=session, store=store, restorer=restorer)
        if hit is not None:
            return hit
        item = repository.item(session, job_id, frame_id)
        job = repository.get_job(session, job_id)
        if item is not None and item.state == "failed":
            raise RestoreFailed(f"frame {frame_id} could not be restored: {item.error}")
        if job is None or job.state in FINISHED:
            raise RestoreFailed(
                f"restore job {job_id} finished without a cached restoration for this server's "
                f"model ({job.error if job is not None and job.error else 'no error recorded'})"
            )
    return Pending(job_id)
