"""The Celery side of the request id: the message header is bound around the restore task."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.observability.logs import current_request_id, request_context
from app.restorations.celery_queue import CeleryQueue
from worker import tasks


def test_the_task_runs_under_the_request_id_of_its_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str | None] = []
    monkeypatch.setattr(tasks, "restore_context", lambda: SimpleNamespace())
    monkeypatch.setattr(
        tasks, "run_restore_job", lambda job_id, ctx: seen.append(current_request_id())
    )
    tasks.restore_job.apply(args=["job-1"], headers={"request_id": "trace-w1"})
    tasks.restore_job.apply(args=["job-2"])
    assert seen == ["trace-w1", None]


def test_the_api_sends_the_request_id_with_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, object]] = []
    celery = SimpleNamespace(send_task=lambda name, **options: sent.append(options))
    queue = CeleryQueue(celery, queue="restore")  # type: ignore[arg-type]
    with request_context("trace-api-9"):
        queue.submit("job-9")
    assert sent[0]["headers"] == {"request_id": "trace-api-9"}
    assert sent[0]["args"] == ["job-9"]
