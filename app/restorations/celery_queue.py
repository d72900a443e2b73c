"""Restore jobs through Celery: the broker configuration the API and the workers share, and
`CeleryQueue`, the API's side of it (the `RestoreQueue` for restore_backend="celery").

The API only publishes job ids. It never imports the task module (and so never loads the model):
tasks are sent by name and routed to the restore queue the GPU workers consume. Delivery is
at-least-once on purpose: a job is acknowledged only after it finished, so a worker that dies
mid-job leaves the message for another worker; the restore task is idempotent.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import redis
from celery import Celery
from celery.utils.nodenames import worker_direct
from kombu.exceptions import KombuError
from kombu.exceptions import OperationalError as BrokerOperationalError

from app.config import Settings
from app.errors import QueueUnavailable
from app.observability.logs import current_request_id

RESTORE_TASK = "cctv_archive.restore_job"
# A task that does nothing but what every restore needs first (the pool process's restore
# context, its model loaded): a worker that answers ping but whose pool processes cannot
# run tasks (the model cannot load, processes killed in a loop) never completes it.
HEALTH_TASK = "cctv_archive.health"
HEALTH_REPLY_PREFIX = "cctv_archive:health:"
HEALTH_REPLY_TTL_S = 120
REASON_MAX_CHARS = 200

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


def make_celery(settings: Settings, *, include: tuple[str, ...] = ()) -> Celery:
    """A Celery app configured from the CCTV_ settings (broker URL, queue, time limits); the
    settings already refuse a visibility timeout that is not longer than the time limit."""
    time_limit = settings.restore_time_limit_s
    visibility = settings.restore_visibility_timeout_s
    celery = Celery("cctv_archive", include=list(include))
    celery.conf.update(
        broker_url=settings.broker_url,
        result_backend=settings.result_backend_url,
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
        task_routes={
            RESTORE_TASK: {"queue": settings.restore_queue},
            HEALTH_TASK: {"queue": settings.restore_queue},
        },
        task_default_queue="celery",
        # Each worker also consumes its own queue, so a health check can ask one named worker
        # (the container's own healthcheck) rather than whichever worker is free.
        worker_direct=True,
        # The soft limit raises inside the task so it can mark the job failed; the hard limit
        # kills a task that ignores it.
        task_soft_time_limit=max(1, time_limit - max(1, time_limit // 10)),
        task_time_limit=time_limit,
        # A stopping worker (SIGTERM, remapped to a cold shutdown by `cctv-archive worker`)
        # lets running jobs finish for this long, then hands them back to Redis at once:
        # another worker resumes them now instead of after the visibility timeout.
        worker_soft_shutdown_timeout=float(settings.restore_shutdown_grace_s),
    )
    return celery


class CeleryQueue:
    """Publishes restore jobs to the Celery broker (Redis)."""

    def __init__(self, celery: Celery, *, queue: str, retry_after_s: int = RETRY_AFTER_S) -> None:
        self._celery = celery
        self.queue = queue
        self.retry_after_s = retry_after_s

    @classmethod
    def from_settings(cls, settings: Settings) -> CeleryQueue:
        return cls(make_celery(settings), queue=settings.restore_queue)

    def submit(self, job_id: str) -> None:
        """Queue job `job_id` (committed before this call). Raises QueueUnavailable (503)."""
        try:
            self._celery.send_task(
                RESTORE_TASK,
                args=[job_id],
                queue=self.queue,
                retry=True,
                retry_policy=PUBLISH_RETRY_POLICY,
                # The worker logs the job under the id of the request that started it.
                headers={"request_id": current_request_id()},
            )
        except BROKER_ERRORS as exc:
            raise self._unavailable(exc) from exc

    def owns(self, job_id: str) -> bool | None:
        return None  # Redis holds the messages; whether a worker has this one is not known here

    def check(self) -> None:
        """Raise QueueUnavailable unless the broker accepts a connection (readiness probe)."""
        try:
            with self._celery.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=3)
        except BROKER_ERRORS as exc:
            raise self._unavailable(exc) from exc

    def check_workers(self, timeout_s: float, *, worker: str | None = None) -> dict[str, Any]:
        """Have a restore worker's pool process run HEALTH_TASK; its reply, or QueueUnavailable
        with a one-line reason when none completes it within `timeout_s` or it failed. With
        `worker` (a node name, e.g. celery@host), that worker runs it, through its own queue.

        The task waits behind running restore jobs like any other: a fleet whose every worker
        is busy for longer than `timeout_s` is reported as not completing it. It expires after
        `timeout_s`, so checks made while no worker runs do not pile up in the queue.
        """
        reply_key = f"{HEALTH_REPLY_PREFIX}{uuid.uuid4().hex}"
        try:
            self._celery.send_task(
                HEALTH_TASK,
                args=[reply_key],
                queue=worker_direct(worker) if worker else self.queue,
                expires=timeout_s,
                retry=True,
                retry_policy=PUBLISH_RETRY_POLICY,
            )
            client = _redis(self._celery.conf.broker_url, read_timeout_s=timeout_s + 5)
            try:
                popped = client.blpop([reply_key], timeout=max(1, math.ceil(timeout_s)))
            finally:
                client.close()
        except (*BROKER_ERRORS, redis.RedisError) as exc:
            raise self._unavailable(exc) from exc
        if popped is None and worker:
            raise QueueUnavailable(
                f"restore worker {worker[:100]!r} did not complete a health task within "
                f"{timeout_s:g} s (not running, unable to run tasks, or busy)"
            )
        if popped is None:
            raise QueueUnavailable(
                f"no restore worker on queue {self.queue!r} completed a health task within "
                f"{timeout_s:g} s (none running, none able to run tasks, or all busy)"
            )
        reply = json.loads(popped[1])
        if not reply.get("ok"):
            reason = str(reply.get("reason", "no reason given"))[:REASON_MAX_CHARS]
            raise QueueUnavailable(f"restore worker {reply.get('worker', '?')}: {reason}")
        return dict(reply)

    def start(self) -> None:
        """Nothing to start: the workers consume the queue."""

    def resume(self) -> int:
        """Nothing to resume: the broker keeps each message until a worker acknowledges it."""
        return 0

    def stop(self) -> None:
        """Nothing to stop: queued jobs stay with the broker."""

    def _unavailable(self, exc: BaseException) -> QueueUnavailable:
        detail = f"{type(exc).__name__}: {exc}"[:REASON_MAX_CHARS]
        return QueueUnavailable(f"restore queue unavailable: {detail}")


def _redis(broker_url: str, *, read_timeout_s: float) -> redis.Redis:
    return redis.Redis.from_url(broker_url, socket_connect_timeout=3, socket_timeout=read_timeout_s)


def send_health_reply(broker_url: str, reply_key: str, reply: dict[str, Any]) -> None:
    """The worker's side of `CeleryQueue.check_workers`: hand the reply to the waiting check
    (through the broker's Redis; kept HEALTH_REPLY_TTL_S if nobody waits any more)."""
    if not reply_key.startswith(HEALTH_REPLY_PREFIX):
        raise ValueError("not a health reply key")
    client = _redis(broker_url, read_timeout_s=5)
    try:
        with client.pipeline() as pipe:
            pipe.rpush(reply_key, json.dumps(reply))
            pipe.expire(reply_key, HEALTH_REPLY_TTL_S)
            pipe.execute()
    finally:
        client.close()
