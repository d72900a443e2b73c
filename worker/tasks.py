"""The restore task: a thin shell around `run_restore_job`, which the in-process pool runs too.

The task takes a job id and nothing else; everything it works on is read from committed rows.
Transient failures (database, store or network away) are retried with backoff; anything else, or
a transient failure that outlasts the retries, ends the job in `failed` with its reason.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init
from sqlalchemy.exc import DBAPIError, OperationalError

from app.config import get_settings
from app.errors import StorageUnavailable
from app.lifecycle.retention import sweep_configured
from app.observability.logs import request_context
from app.observability.metrics import record_model
from app.restorations.celery_queue import HEALTH_TASK, send_health_reply
from app.restorations.context import RestoreContext
from app.restorations.task import fail_restore_job, run_restore_job
from worker.celery_app import LIFECYCLE_TASK, RESTORE_TASK, celery_app

logger = logging.getLogger(__name__)

# A transient outage (S3, the database, the network) is retried for this long in all, so an
# outage of a few minutes never fails a job for good (5 quick retries spent 6 s); an investigator
# can still resume a job that failed (POST /v1/restore-jobs/{id}/resume).
RETRY_WINDOW_S = 600.0
BACKOFF_BASE_S = 5.0
BACKOFF_MAX_S = 120.0  # well under the visibility timeout: a retry waits in this worker's memory

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    StorageUnavailable,
    OperationalError,
    ConnectionError,
    TimeoutError,
)


_context: RestoreContext | None = None
_context_lock = threading.Lock()


def restore_context() -> RestoreContext:
    """The restore bundle of this process (settings, database sessions, store, model), built
    once.

    Called in each pool process after the fork, never in the parent: CUDA cannot be used in a
    process forked from one that initialised it, and each GPU process needs its own model.
    """
    global _context
    with _context_lock:
        if _context is None:
            _context = RestoreContext.from_settings(get_settings())
            restorer = _context.restorer
            logger.info(
                "restore worker: model %s on %s (%s)",
                restorer.name,
                restorer.device,
                restorer.engine,
            )
            record_model(
                restorer.name, restorer.weights_sha256, restorer.degradation_id, restorer.engine
            )
        return _context


# Celery kills a pool process that is not up within worker_proc_alive_timeout, and loading a
# model in the process-init hook missed that deadline again and again under load. So the hook
# only starts a thread that loads it (restore_context), and a task that comes first waits for
# that load under the same lock. Before, the first task loaded the model itself, inside its
# time limit (7 s for an 8x32 test model calibrated to int8 on a slow CPU; more for larger).


@worker_process_init.connect
def _load_model_soon(**_: Any) -> None:
    threading.Thread(target=_preload, name="model-preload", daemon=True).start()


def _preload() -> None:
    try:
        restore_context()
    except Exception:  # each task and each health check tries again
        logger.exception("restore worker: the model could not be loaded at start")


def backoff_s(retries: int) -> float:
    """Exponential backoff with "equal" jitter: at least half of each step, so the retries of an
    outage add up to minutes, and workers do not retry in lockstep."""
    step = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**retries)
    return random.uniform(step / 2, step)


def retry_delay_s(retries: int, retried_for_s: float) -> float | None:
    """How long to wait before the next try, or None once RETRY_WINDOW_S has been spent."""
    if retried_for_s >= RETRY_WINDOW_S:
        return None
    return backoff_s(retries)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, TRANSIENT_ERRORS)


def fail_job(job_id: str, reason: str) -> None:
    """Record the job as failed with `reason` (a job must never be left running forever)."""
    fail_restore_job(job_id, reason, session_factory=restore_context().session_factory)


@celery_app.task(bind=True, name=RESTORE_TASK, max_retries=None)
def restore_job(self: Task, job_id: str, retried_for_s: float = 0.0) -> None:
    """Restore every frame of restore job `job_id`; safe to run more than once. Transient
    failures are retried until `retried_for_s` (the waits so far) reaches RETRY_WINDOW_S."""
    # Log lines carry the id of the API request that started the job (a message header).
    with request_context(request_id_of(self.request)):
        _restore_job(self, job_id, retried_for_s)


def request_id_of(request: Any) -> str | None:
    """The request id header of a task's message: a message's own headers become attributes of
    the task request; `apply` (eager, tests) keeps them in `headers`."""
    found = getattr(request, "request_id", None) or (request.headers or {}).get("request_id")
    return str(found) if found else None


def _restore_job(self: Task, job_id: str, retried_for_s: float) -> None:
    try:
        run_restore_job(job_id, restore_context())
    except SoftTimeLimitExceeded:
        limit = self.app.conf.task_soft_time_limit
        fail_job(job_id, f"restore job ran longer than its time limit ({limit} s)")
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        delay = retry_delay_s(self.request.retries, retried_for_s) if is_transient(exc) else None
        if delay is not None:
            logger.warning("restore job %s: %s; retry in %.1f s", job_id, reason, delay)
            raise self.retry(
                exc=exc, countdown=delay, args=[job_id, retried_for_s + delay], kwargs={}
            ) from exc
        logger.exception("restore job %s failed", job_id)
        attempts = self.request.retries + 1
        if attempts > 1:
            reason = f"{reason} (after {attempts} attempts over {retried_for_s:.0f} s)"
        fail_job(job_id, reason)


@celery_app.task(bind=True, name=HEALTH_TASK, ignore_result=True)
def health(self: Task, reply_key: str) -> None:
    """Prove that this pool process can run restore jobs: build its restore context (waiting
    for the model's load, or loading it, as a restore job would) and reply to the waiting check
    (`cctv-archive worker-check`). A failure is replied with its kind, not its details."""
    worker = self.request.hostname or "?"
    try:
        restorer = restore_context().restorer
        reply = {"ok": True, "worker": worker, "model": restorer.name}
    except Exception as exc:
        logger.exception("health task: the restore context cannot be built")
        reason = f"cannot load the model or its stores ({type(exc).__name__}); see its log"
        reply = {"ok": False, "worker": worker, "reason": reason}
    send_health_reply(self.app.conf.broker_url, reply_key, reply)


@celery_app.task(name=LIFECYCLE_TASK, ignore_result=True)
def lifecycle_sweep() -> dict[str, int]:
    """One retention pass (frames past retention or quota, originals past their window; held
    frames stay): the beat schedule's periodic task when scaled out. Needs no model."""
    report = sweep_configured(get_settings())
    return {"frames": len(report.frames), "originals": len(report.originals)}
