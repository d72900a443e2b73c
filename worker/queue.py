"""CeleryQueue: the API's side of the broker (the `RestoreQueue` for restore_backend="celery").

The API only publishes job ids. It never imports the task module (and so never loads the model):
tasks are sent by name and routed to the restore queue the GPU workers consume.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.exceptions import KombuError
from kombu.exceptions import OperationalError as BrokerOperationalError

from app.errors import QueueUnavailable

# A request is waiting on the answer: try the broker briefly, then tell the client when to retry
# rather than hanging the request for the broker's full reconnect schedule.
PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
RETRY_AFTER_S = 30

BROKER_ERRORS = (BrokerOperationalError, KombuError, ConnectionError, OSError, TimeoutError)


class CeleryQueue:
    """Publishes restore jobs to the Celery broker (Redis)."""

    def __init__(self, celery: Celery, *, queue: str, retry_after_s: int = RETRY_AFTER_S) -> None:
        self._celery = celery
        self.queue = queue
        self.retry_after_s = retry_after_s

    @classmethod
    def from_settings(cls, settings: Any) -> CeleryQueue:
        """The queue for these settings (used by app `build_queue` for restore_backend="celery")."""
        from worker.celery_app import celery_app, make_celery, restore_queue

        same_broker = celery_app.conf.broker_url == settings.broker_url
        celery = celery_app if same_broker else make_celery(settings)
        return cls(celery, queue=restore_queue(settings))

    def submit(self, job_id: str) -> None:
        """Queue job `job_id` (committed before this call). Raises QueueUnavailable (503)."""
        from worker.celery_app import RESTORE_TASK

        try:
            self._celery.send_task(
                RESTORE_TASK,
                args=[job_id],
                queue=self.queue,
                retry=True,
                retry_policy=PUBLISH_RETRY_POLICY,
            )
        except BROKER_ERRORS as exc:
            raise self._unavailable(exc) from exc

    def check(self) -> None:
        """Raise QueueUnavailable unless the broker accepts a connection (readiness probe)."""
        try:
            with self._celery.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=3)
        except BROKER_ERRORS as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> QueueUnavailable:
        return QueueUnavailable(f"restore queue unavailable: {type(exc).__name__}: {exc}")
