"""The Celery app for restore jobs: `celery -A worker.celery_app worker -Q restore`.

Delivery is at-least-once on purpose: a job is acknowledged only after it finished, so a worker
that dies mid-job (OOM, SIGKILL, a lost GPU host) leaves the message for another worker. The
restore task is idempotent, so a second delivery repeats no work that was committed.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from celery import Celery

from app.config import get_settings

RESTORE_TASK = "cctv_archive.restore_job"

# Defaults for the settings this module reads; the Settings class may override each of them.
DEFAULT_QUEUE = "restore"
DEFAULT_TIME_LIMIT_S = 1800
DEFAULT_VISIBILITY_TIMEOUT_S = 3600
DEFAULT_SHUTDOWN_GRACE_S = 60


def _setting(settings: Any, name: str, default: Any) -> Any:
    value = getattr(settings, name, None)
    return default if value is None else value


def restore_queue(settings: Any) -> str:
    return str(_setting(settings, "restore_queue", DEFAULT_QUEUE))


def make_celery(settings: Any) -> Celery:
    """A Celery app configured from the CCTV_ settings (broker URL, queue, time limits)."""
    time_limit = int(_setting(settings, "restore_time_limit_s", DEFAULT_TIME_LIMIT_S))
    visibility = int(
        _setting(settings, "restore_visibility_timeout_s", DEFAULT_VISIBILITY_TIMEOUT_S)
    )
    if visibility <= time_limit:
        # Redis redelivers an unacknowledged message after the visibility timeout; a job still
        # running at that point would run twice at once.
        raise ValueError(
            f"restore_visibility_timeout_s ({visibility}) must be longer than "
            f"restore_time_limit_s ({time_limit})"
        )
    broker = settings.broker_url
    celery = Celery("cctv_archive", include=["worker.tasks"])
    celery.conf.update(
        broker_url=broker,
        result_backend=_setting(settings, "result_backend_url", None),
        # Job state lives in the database; Celery results would be a second, stale copy.
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        # At-least-once: ack after the task ran, and requeue when the process running it died.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One job in hand per process: a job waiting behind a long one on a busy worker could
        # be running on an idle worker instead (and is not stuck if this worker dies).
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": visibility,
            # How often workers look for abandoned messages: often enough to honour a short
            # visibility timeout without polling Redis needlessly on long ones. kombu scans
            # only every `throttle`-th time (default 10); 1 makes the interval the real period.
            "unacked_restore_interval": max(1, min(10, visibility // 5)),
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": 5,
        },
        broker_connection_retry_on_startup=True,
        task_routes={RESTORE_TASK: {"queue": restore_queue(settings)}},
        task_default_queue="celery",
        # The soft limit raises inside the task so it can mark the job failed; the hard limit
        # kills a task that ignores it.
        task_soft_time_limit=max(1, time_limit - max(1, time_limit // 10)),
        task_time_limit=time_limit,
        # A stopping worker (SIGTERM, remapped to a cold shutdown in `main`) lets running jobs
        # finish for this long, then hands them back to Redis at once: another worker resumes
        # them now instead of after the visibility timeout.
        worker_soft_shutdown_timeout=float(
            _setting(settings, "restore_shutdown_grace_s", DEFAULT_SHUTDOWN_GRACE_S)
        ),
    )
    return celery


celery_app = make_celery(get_settings())
# `celery -A worker.celery_app` looks for a module attribute named `app` or `celery`.
app = celery_app


def main(argv: list[str] | None = None) -> int:
    """Start a worker on the restore queue (what `cctv-archive worker ARGS...` runs).

    One process by default: each process holds its own copy of the model (and a CUDA context),
    and one busy process already keeps a GPU fed because frames are restored in batches.
    Extra arguments are passed to `celery worker` and win over these defaults.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    # SIGTERM (docker stop, systemd, Kubernetes) would otherwise be a warm shutdown that waits
    # for every running job however long it takes, until the orchestrator's SIGKILL; as a cold
    # shutdown with the grace above it requeues what is left. Read by Celery when it starts.
    os.environ.setdefault("REMAP_SIGTERM", "SIGQUIT")
    celery_app.worker_main(
        [
            "worker",
            "--queues",
            restore_queue(get_settings()),
            "--pool",
            "prefork",
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            *args,
        ]
    )
    return 0
