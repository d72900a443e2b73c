"""CeleryQueue against a real redis-server of the test's own, which the tests stop and restart."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis

from app.errors import QueueUnavailable
from tests import services
from worker.celery_app import RESTORE_TASK, make_celery
from worker.queue import CeleryQueue


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[services.RedisServer]:
    with services.redis_server(tmp_path) as server:
        yield server


def _queue(url: str, name: str = "restore-test") -> CeleryQueue:
    settings = SimpleNamespace(broker_url=url, restore_queue=name)
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
    settings = SimpleNamespace(
        broker_url="redis://127.0.0.1:1/0",
        restore_queue="gpu",
        restore_time_limit_s=600,
        restore_visibility_timeout_s=900,
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
    assert conf.worker_soft_shutdown_timeout == 60  # then unfinished jobs go back to Redis


def test_visibility_timeout_must_outlast_the_longest_job() -> None:
    settings = SimpleNamespace(
        broker_url="redis://127.0.0.1:1/0",
        restore_time_limit_s=600,
        restore_visibility_timeout_s=600,
    )
    with pytest.raises(ValueError, match="visibility"):
        make_celery(settings)
