"""Restored frames (on demand, labelled as derivatives) and restore jobs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.auth.schemas import Principal
from app.db import unit_of_work
from app.deps import QueueDep, ReadKey, RestoreDep, SessionDep
from app.restorations import jobs, on_demand
from app.restorations.cache import Restored
from app.restorations.context import RestoreContext
from app.restorations.provenance import Method, OutputFormat
from app.restorations.queue import NotifyingQueue, RestoreQueue
from app.restorations.schemas import RestoreJobCreate, RestoreJobRead

router = APIRouter(tags=["restorations"])

# How often a waiting request looks for its result when its queue cannot tell it the job ended
# (Celery: the job runs in another process): soon at first, then less often.
POLL_FIRST_S, POLL_MAX_S = 0.05, 0.5
# How often it looks anyway while the in-process pool will tell it: a job of many frames may
# restore this one long before the whole job ends.
WATCHED_POLL_S = 1.0


@router.get(
    "/v1/frames/{frame_id}/restored",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "image/webp": {}, "image/jpeg": {}}},
        202: {"model": RestoreJobRead, "description": "not ready within `wait`; see Location"},
        404: {"description": "unknown frame"},
        409: {"description": "the model was not trained for how this frame is stored"},
        503: {"description": "restore queue full or unavailable; see Retry-After"},
    },
)
async def get_restored_frame(
    frame_id: str,
    principal: ReadKey,
    restore: RestoreDep,
    queue: QueueDep,
    format: Annotated[OutputFormat, Query()] = OutputFormat.png,
    method: Annotated[Method, Query()] = Method.edsr,
    wait: Annotated[float | None, Query(ge=0, le=300, description="seconds")] = None,
) -> Response:
    """The frame at full resolution: from the restore cache, or restored now. If that takes
    longer than `wait` seconds (default CCTV_RESTORE_WAIT_S), 202 with the job's Location."""
    # No session for the whole request: each step below is its own short transaction, so a
    # request waiting up to 300 s holds no pooled connection while it sleeps.
    outcome = await run_in_threadpool(
        on_demand.restore_or_enqueue,
        frame_id,
        method,
        format,
        principal=principal,
        context=restore,
        queue=queue,
    )
    if isinstance(outcome, on_demand.Pending):
        wait_s = restore.settings.restore_wait_s if wait is None else wait
        outcome = await _wait_for_result(outcome, frame_id, method, format, restore, queue, wait_s)
        if isinstance(outcome, on_demand.Pending):
            job = await run_in_threadpool(_job_view, outcome.job_id, restore)
            return JSONResponse(
                job.model_dump(mode="json"),
                status_code=202,
                headers={"Location": job.links.self, "Retry-After": "2"},
            )
        await run_in_threadpool(_audit, principal, frame_id, method, format, restore)
    # Else restore_or_enqueue has audit-logged the read already.
    return Response(
        outcome.data,
        media_type=outcome.media_type,
        headers={
            **outcome.provenance.headers(),
            "Content-Disposition": (
                f'inline; filename="{frame_id}-restored-{method.value}.{format.extension}"'
            ),
        },
    )


async def _wait_for_result(
    outcome: on_demand.Pending,
    frame_id: str,
    method: Method,
    fmt: OutputFormat,
    restore: RestoreContext,
    queue: RestoreQueue,
    wait_s: float,
) -> Restored | on_demand.Pending:
    """Wait up to `wait_s` for job `outcome.job_id` to make the restoration, then read it as
    `poll_restoration` does (RestoreFailed if the job could not). The in-process pool wakes
    the request the moment the job ends; other queues are polled, soon at first, then less
    often. No database connection is held while waiting."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    pause = POLL_FIRST_S
    look_now = isinstance(queue, NotifyingQueue)  # a job not in the pool's hands has ended
    while isinstance(outcome, on_demand.Pending) and loop.time() < deadline:
        ended = asyncio.Event()
        cancel = None
        if isinstance(queue, NotifyingQueue):
            notify = functools.partial(loop.call_soon_threadsafe, ended.set)
            cancel = queue.watch(outcome.job_id, notify)
        remaining = max(0.0, deadline - loop.time())
        try:
            if cancel is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ended.wait(), min(WATCHED_POLL_S, remaining))
                look_now = True
            elif look_now:
                look_now = False
            else:
                await asyncio.sleep(min(pause, remaining))
                pause = min(pause * 1.5, POLL_MAX_S)
        finally:
            if cancel is not None:
                cancel()
        outcome = await run_in_threadpool(
            on_demand.poll_restoration, frame_id, outcome.job_id, method, fmt, restore
        )
    return outcome


def _job_view(job_id: str, restore: RestoreContext) -> RestoreJobRead:
    with unit_of_work(restore.session_factory) as session:
        return jobs.job_view(job_id, session=session)


def _audit(
    principal: Principal, frame_id: str, method: Method, fmt: OutputFormat, restore: RestoreContext
) -> None:
    with unit_of_work(restore.session_factory) as session:
        on_demand.record_restored_read(principal, frame_id, method, fmt, session=session)


@router.post(
    "/v1/restore-jobs",
    status_code=202,
    response_model=RestoreJobRead,
    responses={
        404: {"description": "an unknown frame id"},
        409: {"description": "the model was not trained for how a frame is stored"},
        503: {"description": "restore queue full or unavailable; see Retry-After"},
    },
)
def create_restore_job(
    request: RestoreJobCreate,
    principal: ReadKey,
    session: SessionDep,
    restore: RestoreDep,
    queue: QueueDep,
    response: Response,
) -> RestoreJobRead:
    """Restore many frames as one job: a list of frame ids, or a camera and capture-time range.
    Fetch each restored frame through its frame endpoint once the job is done."""
    job_id = jobs.create_job(request, principal=principal, context=restore, queue=queue)
    job = jobs.job_view(job_id, session=session)
    response.headers["Location"] = job.links.self
    return job


@router.get("/v1/restore-jobs/{job_id}", responses={404: {"description": "unknown job"}})
def get_restore_job(job_id: str, principal: ReadKey, session: SessionDep) -> RestoreJobRead:
    """A job's state and progress (done/total) and the frames that failed, with why."""
    return jobs.job_view(job_id, session=session)


@router.post(
    "/v1/restore-jobs/{job_id}/resume",
    status_code=202,
    response_model=RestoreJobRead,
    responses={
        404: {"description": "unknown job"},
        409: {"description": "the job is not failed (queued, running or done)"},
        503: {"description": "restore queue full or unavailable; see Retry-After"},
    },
)
def resume_restore_job(
    job_id: str,
    principal: ReadKey,
    restore: RestoreDep,
    queue: QueueDep,
    response: Response,
) -> RestoreJobRead:
    """Queue a failed job again (say, after a storage outage): its failed frames are retried,
    those already restored are kept."""
    jobs.resume_job(job_id, context=restore, queue=queue)
    job = _job_view(job_id, restore)
    response.headers["Location"] = job.links.self
    return job
