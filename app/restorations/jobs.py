"""Restore jobs' lifecycle: create one (for frame ids or a camera's time range), hand it to the
queue once committed, and show its progress. The task that runs them is in task.py."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.auth.schemas import Principal
from app.config import Settings
from app.db import SessionFactory, unit_of_work, utcnow
from app.errors import (
    FrameNotFound,
    InvalidInput,
    JobNotFound,
    JobNotResumable,
    QueueUnavailable,
)
from app.frames import repository as frames_repository
from app.leases import Leases
from app.restorations import repository
from app.restorations.context import RestoreContext
from app.restorations.model import check_restorable
from app.restorations.models import RestoreJob, RestoreJobItem
from app.restorations.provenance import Method, OutputFormat
from app.restorations.queue import RestoreQueue
from app.restorations.schemas import JobError, JobItem, JobLinks, RestoreJobCreate, RestoreJobRead
from app.restorations.task import fail_restore_job

logger = logging.getLogger(__name__)


def new_job(
    session: Session, frame_ids: list[str], method: Method, fmt: OutputFormat, requested_by: str
) -> RestoreJob:
    """A queued job with one pending item per frame, added to `session` (not yet committed)."""
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
    """Queue a committed job; if the queue refuses it, the job is failed and the error raised.
    A queue with leases (the in-process pool) claims it first, and leaves it to the server
    process that holds it, if another one does."""
    leases = _leases(queue)
    if leases is not None and not leases.claim([job_id]):
        logger.info("restore job %s: another server process holds it", job_id)
        return
    try:
        queue.submit(job_id)
    except QueueUnavailable as exc:
        fail_restore_job(job_id, f"not queued: {exc.message}", session_factory=session_factory)
        raise


def create_job(
    request: RestoreJobCreate,
    *,
    principal: Principal,
    context: RestoreContext,
    queue: RestoreQueue,
) -> str:
    """Create and queue one job for a list of frames or a camera's time range; returns its id."""
    limit = context.settings.restore_job_max_frames
    with unit_of_work(context.session_factory) as session:
        frame_ids = frames_repository.selected_ids(
            session,
            frame_ids=request.frame_ids,
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
        check_restorable(frames.values(), request.method, context.restorer)
        job_id = new_job(session, frame_ids, request.method, request.format, principal.name).id
    submit_job(job_id, queue=queue, session_factory=context.session_factory)
    return job_id


def _queue_holds(queue: RestoreQueue, job_id: str) -> bool | None:
    owns = getattr(queue, "owns", None)  # test doubles may not have it: unknown
    return owns(job_id) if owns is not None else None


def _leases(queue: RestoreQueue) -> Leases | None:
    """The in-process pool's claims on jobs; None for a queue without (Celery, test doubles)."""
    leases = getattr(queue, "leases", None)
    return leases if isinstance(leases, Leases) else None


def _idle_cutoff(settings: Settings, *, owner_known: bool) -> datetime:
    idle_s = settings.restore_stale_job_s
    if not owner_known:  # a broker redelivers a dead worker's job after the visibility timeout
        idle_s = max(idle_s, settings.restore_visibility_timeout_s)
    return utcnow() - timedelta(seconds=idle_s)


def held_by_a_worker(job: RestoreJob, *, queue: RestoreQueue, settings: Settings) -> bool:
    """Whether someone will finish `job`: the queue says it holds it; or, where the queue cannot
    tell (Celery), the job made progress within the stale limit and the visibility timeout."""
    held = _queue_holds(queue, job.id)
    if held is None:
        return job.updated_at >= _idle_cutoff(settings, owner_known=False)
    leases = _leases(queue)  # or another process of this server does
    return held or (leases is not None and leases.held_elsewhere(job.owner, job.updated_at))


def sweep_unowned_jobs(*, context: RestoreContext, queue: RestoreQueue) -> int:
    """Resume the queued or running jobs no worker holds (a failure that could not be recorded,
    a lost message): handed to the queue again, or failed if it refuses them. Returns how many."""
    settings = context.settings
    known_cutoff = _idle_cutoff(settings, owner_known=True)
    unknown_cutoff = _idle_cutoff(settings, owner_known=False)
    leases = _leases(queue)
    orphans: list[str] = []
    with unit_of_work(context.session_factory) as session:
        for job in repository.idle_active_jobs(session, known_cutoff):
            held = _queue_holds(queue, job.id)
            if held or (held is None and job.updated_at >= unknown_cutoff):
                continue
            if leases is None:
                job.updated_at = utcnow()  # resubmitted once per stale period, not every round
            orphans.append(job.id)
    if leases is not None:  # of the server's processes sweeping at once, one takes each
        orphans = leases.claim(orphans)
    for job_id in orphans:
        logger.warning("restore job %s: no worker holds it; queued again", job_id)
        try:
            submit_job(job_id, queue=queue, session_factory=context.session_factory)
        except QueueUnavailable:
            logger.warning("restore job %s: the queue refused it; failed", job_id)
    return len(orphans)


def resume_job(job_id: str, *, context: RestoreContext, queue: RestoreQueue) -> None:
    """Queue a failed job again: its failed frames back to pending, the frames already restored
    kept. Only a failed job: a queued or running one is still someone's to finish."""
    with unit_of_work(context.session_factory) as session:
        job = repository.get_job(session, job_id)
        if job is None:
            raise JobNotFound(f"no restore job {job_id!r}")
        if job.state != "failed":
            raise JobNotResumable(
                f"restore job {job_id!r} is {job.state}; only a failed job can be resumed"
            )
        repository.retry_failed_items(session, job_id)
        job.state, job.error, job.attempts, job.owner = "queued", None, 0, None
        job.started_at = job.finished_at = None
        job.updated_at = utcnow()
    submit_job(job_id, queue=queue, session_factory=context.session_factory)


def job_view(job_id: str, *, session: Session) -> RestoreJobRead:
    """Job `job_id` as the API shows it; JobNotFound (404) if there is none."""
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
        waited_s=round(
            ((job.started_at or job.finished_at or utcnow()) - job.created_at).total_seconds(), 3
        ),
        links=JobLinks(self=f"/v1/restore-jobs/{job.id}"),
    )
