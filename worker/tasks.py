"""The restore task: a thin shell around `run_restore_job`, which the in-process pool runs too.

The task takes a job id and nothing else; everything it works on is read from committed rows.
Transient failures (database, store or network away) are retried with backoff; anything else, or
a transient failure that outlasts the retries, ends the job in `failed` with its reason.
"""

from __future__ import annotations

import logging
import random
import threading

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init
from sqlalchemy.exc import DBAPIError, OperationalError

from app.config import get_settings
from app.errors import StorageUnavailable
from app.restorations.context import RestoreContext
from app.restorations.task import fail_restore_job, run_restore_job
from worker.celery_app import RESTORE_TASK, celery_app

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
BACKOFF_BASE_S = 2.0
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
            logger.info("restore worker: model %s on %s", restorer.name, restorer.device)
        return _context


@worker_process_init.connect
def _warm_up(**_: object) -> None:
    # Load the model when the process starts, not when the first job arrives; a failure here is
    # logged and retried by the first task, which then marks its job failed with the reason.
    try:
        restore_context()
    except Exception:
        logger.exception("restore worker: could not load resources at start")


def backoff_s(retries: int) -> float:
    """Exponential backoff with full jitter, so workers do not retry in lockstep."""
    return random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**retries))


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, TRANSIENT_ERRORS)


def fail_job(job_id: str, reason: str) -> None:
    """Record the job as failed with `reason` (a job must never be left running forever)."""
    fail_restore_job(job_id, reason, session_factory=restore_context().session_factory)


@celery_app.task(bind=True, name=RESTORE_TASK, max_retries=MAX_RETRIES)
def restore_job(self: Task, job_id: str) -> None:
    """Restore every frame of restore job `job_id`; safe to run more than once."""
    try:
        run_restore_job(job_id, restore_context())
    except SoftTimeLimitExceeded:
        limit = self.app.conf.task_soft_time_limit
        fail_job(job_id, f"restore job ran longer than its time limit ({limit} s)")
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if is_transient(exc) and self.request.retries < MAX_RETRIES:
            delay = backoff_s(self.request.retries)
            logger.warning("restore job %s: %s; retry in %.1f s", job_id, reason, delay)
            raise self.retry(exc=exc, countdown=delay) from exc
        logger.exception("restore job %s failed", job_id)
        attempts = self.request.retries + 1
        fail_job(job_id, reason if attempts == 1 else f"{reason} (after {attempts} attempts)")
