"""The Celery app of the restore workers: `celery -A worker.celery_app worker -Q restore`.

Its configuration is the API's (app/restorations/celery_queue.py `make_celery`), so publisher and
workers cannot disagree on the broker, the queue or the time limits; this module adds only the
task module and the way a worker is started.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from celery.signals import after_setup_logger, worker_process_init

from app.config import Settings, get_settings
from app.observability.logs import use_format
from app.observability.metrics import serve_worker_metrics
from app.restorations.celery_queue import RESTORE_TASK, make_celery

__all__ = ["DEFAULT_SHUTDOWN_GRACE_S", "RESTORE_TASK", "app", "celery_app", "main"]

# The grace a stopping worker gives running jobs unless CCTV_RESTORE_SHUTDOWN_GRACE_S says
# otherwise (read from Settings, so there is one default).
DEFAULT_SHUTDOWN_GRACE_S: int = Settings.model_fields["restore_shutdown_grace_s"].default

celery_app = make_celery(get_settings(), include=("worker.tasks",))
# `celery -A worker.celery_app` looks for a module attribute named `app` or `celery`.
app = celery_app

# Retention, quotas and the originals window, swept as often as the embedded server's
# housekeeping; beat runs in exactly one process (`cctv-archive worker -B` on one worker).
LIFECYCLE_TASK = "cctv_archive.lifecycle_sweep"
celery_app.conf.beat_schedule = {
    "lifecycle-sweep": {
        "task": LIFECYCLE_TASK,
        "schedule": get_settings().restore_cache_sweep_s,
        "options": {"queue": get_settings().restore_queue, "expires": 3600},
    }
}


@after_setup_logger.connect
def _log_format(logger: logging.Logger, **_: Any) -> None:
    """CCTV_LOG_FORMAT for the worker's log too, with the request id of each job's request."""
    for handler in logger.handlers:
        use_format(handler, get_settings().log_format)


@worker_process_init.connect
def _serve_metrics(**_: Any) -> None:
    """Each pool process serves its own metrics on CCTV_WORKER_METRICS_PORT + its index."""
    from billiard.process import current_process

    index = getattr(current_process(), "index", 0) or 0
    serve_worker_metrics(get_settings().worker_metrics_port, int(index))


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
            get_settings().restore_queue,
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
