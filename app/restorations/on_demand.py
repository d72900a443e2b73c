"""On-demand restores (GET /v1/frames/{id}/restored): from the cache, bicubic right away, or a
job whose result the request may wait for. Every step is its own short transaction, so a
request that waits holds no database connection in between."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.auth.schemas import Principal
from app.auth.service import record_read
from app.db import unit_of_work
from app.errors import RestoreFailed
from app.frames.models import Frame
from app.frames.service import get_frame
from app.observability.metrics import record_cache
from app.restorations import repository
from app.restorations.cache import (
    Restored,
    cached,
    provenance_of,
    record_restorations,
    restore_pixels,
    write_restorations,
)
from app.restorations.context import RestoreContext
from app.restorations.jobs import held_by_a_worker, new_job, submit_job
from app.restorations.model import check_restorable
from app.restorations.provenance import Method, OutputFormat
from app.restorations.queue import RestoreQueue
from app.restorations.repository import FINISHED


@dataclass(frozen=True)
class Pending:
    """Not restored yet: job `job_id` is making it."""

    job_id: str


def restore_or_enqueue(
    frame_id: str,
    method: Method,
    fmt: OutputFormat,
    *,
    principal: Principal,
    context: RestoreContext,
    queue: RestoreQueue,
) -> Restored | Pending:
    """From the cache; bicubic right now (it is cheap); else a job (an existing one for this
    frame if there is one) whose result the caller may wait for. A frame it returns has had
    its read audit-logged (a cache hit in the same transaction as the look-up)."""
    created = False
    with unit_of_work(context.session_factory) as session:
        frame = get_frame(frame_id, session=session)
        check_restorable([frame], method, context.restorer)
        hit = cached(
            frame, method, fmt, session=session, store=context.store, restorer=context.restorer
        )
        record_cache(hit is not None)
        if hit is not None:
            record_restored_read(principal, frame_id, method, fmt, session=session)
            return hit
        if method is Method.edsr:
            job = repository.active_job_for(session, frame.id, method.value, fmt.value)
            if job is not None and not held_by_a_worker(
                job, queue=queue, settings=context.settings
            ):
                job = None  # never wait on a job no one will finish; the sweep resumes it
            if job is None:
                job, created = new_job(session, [frame.id], method, fmt, principal.name), True
            job_id = job.id
    if method is Method.bicubic:
        return restore_now(frame, method, fmt, context, reader=principal)
    if created:
        submit_job(job_id, queue=queue, session_factory=context.session_factory)
    return Pending(job_id)


def record_restored_read(
    principal: Principal, frame_id: str, method: Method, fmt: OutputFormat, *, session: Session
) -> None:
    """Audit-log that `principal` was handed the restored frame (committed with `session`)."""
    detail = f"method={method.value} format={fmt.value}"
    record_read(principal, "frame.restored.read", frame_id, session=session, detail=detail)


def restore_now(
    frame: Frame, method: Method, fmt: OutputFormat, context: RestoreContext, *, reader: Principal
) -> Restored:
    """Restore one frame in this thread, cache it and return it, its read by `reader`
    audit-logged in the same transaction; RestoreFailed if it cannot."""
    store, restorer = context.store, context.restorer
    outputs, errors = restore_pixels([frame], method, store=store, restorer=restorer)
    if frame.id in errors:
        raise RestoreFailed(f"frame {frame.id} could not be restored: {errors[frame.id]}")
    frames = {frame.id: frame}
    written = write_restorations(outputs, frames, method, fmt, store=store, restorer=restorer)
    with unit_of_work(context.session_factory) as session:
        record_restorations(
            session, written, method, fmt, store=store, restorer=restorer, settings=context.settings
        )
        record_restored_read(reader, frame.id, method, fmt, session=session)
    return Restored(written[frame.id].data, fmt.media_type, provenance_of(frame, method, restorer))


def poll_restoration(
    frame_id: str, job_id: str, method: Method, fmt: OutputFormat, context: RestoreContext
) -> Restored | Pending:
    """The restoration if job `job_id` has made it; RestoreFailed if it could not."""
    with unit_of_work(context.session_factory) as session:
        frame = get_frame(frame_id, session=session)
        hit = cached(
            frame, method, fmt, session=session, store=context.store, restorer=context.restorer
        )
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
