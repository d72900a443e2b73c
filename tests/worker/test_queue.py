"""CeleryQueue against a real redis-server of the test's own, which the tests stop and restart."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import ValidationError

from app.config import Settings
from app.errors import QueueUnavailable
from app.restorations.celery_queue import RESTORE_TASK, CeleryQueue, make_celery
from tests import services


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[services.RedisServer]:
    with services.redis_server(tmp_path) as server:
        yield server


def _queue(url: str, name: str = "restore-test") -> CeleryQueue:
    settings = Settings(_env_file=None, broker_url=url, restore_queue=name)  # type: ignore[call-arg]
    return CeleryQueue.from_settings(settings)


def _queued_task_names(url: str, queue: str) -> list[tuple[str, list[str]]]:
    """(task name, args) of each message waiting in the Redis list behind `queue`."""
    client = redis.Redis.from_url(url)
    messages = [json.loads(raw) for raw in client.lrange(queue, 0, -1)]
    client.close()
    return [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in messages]


def test_submit_publishes_the_job_id_on_the_restore_queue(broker: services.RedisServer) -> None:
    queue = _queue(broker.url)
    queue.check()
    queue.submit("job-1")
    assert _queued_task_names(broker.url, "restore-test") == [(RESTORE_TASK, ["job-1"])]


def test_broker_down_is_queue_unavailable_quickly_and_recovers(
    broker: services.RedisServer,
) -> None:
    queue = _queue(broker.url)
    queue.submit("before")
    broker.stop()

    started = time.monotonic()
    with pytest.raises(QueueUnavailable):
        queue.check()
    with pytest.raises(QueueUnavailable):
        queue.submit("while-down")
    assert time.monotonic() - started < 15, "a request must not hang on a dead broker"

    broker.start()  # an empty Redis: this one keeps no data across restarts
    queue.check()
    queue.submit("after")
    assert _queued_task_names(broker.url, "restore-test") == [(RESTORE_TASK, ["after"])]


def test_celery_settings_keep_jobs_from_being_lost() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        broker_url="redis://127.0.0.1:1/0",
        restore_queue="gpu",
        restore_time_limit_s=600,
        restore_visibility_timeout_s=900,
        restore_shutdown_grace_s=45,
    )
    conf = make_celery(settings).conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == 900
    # Abandoned jobs are looked for every few seconds, well inside the visibility timeout.
    options = conf.broker_transport_options
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] <= 60
    assert conf.task_time_limit == 600
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.task_routes[RESTORE_TASK] == {"queue": "gpu"}
    assert conf.worker_soft_shutdown_timeout == 45  # then unfinished jobs go back to Redis


def test_visibility_timeout_must_outlast_the_longest_job() -> None:
    # Checked once, by the settings every Celery app is built from.
    with pytest.raises(ValidationError, match="visibility"):
        Settings(  # type: ignore[call-arg]
            _env_file=None,
            broker_url="redis://127.0.0.1:1/0",
            restore_time_limit_s=600,
            restore_visibility_timeout_s=600,
        )


def test_the_worker_runs_the_task_the_api_publishes() -> None:
    import worker.tasks  # noqa: F401  (registers the task on the worker's app)
    from worker.celery_app import celery_app

    assert RESTORE_TASK in celery_app.tasks
    assert celery_app.conf.task_routes[RESTORE_TASK] == {"queue": Settings().restore_queue}
