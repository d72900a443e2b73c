"""The Celery side: the request id travels as a message header and is bound around the restore
task; a real worker logs the job under it and serves its own metrics."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.observability.logs import current_request_id, request_context
from app.restorations.celery_queue import CeleryQueue
from tests import services
from tests.worker.deployment import (
    CeleryWorker,
    frame_png,
    running_api,
    save_tiny_model,
    scaled_out_env,
    settings_from,
    wait_until,
)
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


@pytest.mark.slow
def test_a_real_worker_logs_the_job_under_the_request_id_and_serves_its_metrics(
    tmp_path: Path, s3: services.MotoServer, database_url: str
) -> None:
    shared = services.require_redis()
    broker = shared.rsplit("/", 1)[0] + f"/{services.free_port() % 15 + 1}"
    metrics_port = services.free_port()
    env = scaled_out_env(
        tmp_path,
        database_url=database_url,
        broker_url=broker,
        s3=s3,
        model=save_tiny_model(tmp_path / "tiny.safetensors"),
        log_format="json",
        worker_metrics_port=metrics_port,
    )
    worker = CeleryWorker(env, tmp_path / "worker.log")
    worker.start()
    try:
        with running_api(settings_from(env)) as api:
            frame_id = api.upload(frame_png(0)).json()["id"]
            created = api.client.post(
                "/v1/restore-jobs",
                json={"frame_ids": [frame_id]},
                headers=api.headers | {"X-Request-ID": "trace-celery-1"},
            )
            job_id = created.json()["id"]
            wait_until(lambda: api.job(job_id)["state"] == "done", 60, "job", worker)
        lines = [
            json.loads(line) for line in worker.log.read_text().splitlines() if line.startswith("{")
        ]
        finished = [line for line in lines if line.get("job_id") == job_id]
        assert finished and finished[0]["request_id"] == "trace-celery-1"
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text.read().decode())
            for s in family.samples
        }
        assert samples[("cctv_restore_jobs_finished_total", (("state", "done"),))] == 1
        assert samples[("cctv_restore_queue_wait_seconds_count", ())] == 1
        (info,) = [dict(labels) for name, labels in samples if name == "cctv_model_info"]
        assert len(info["weights_sha256"]) == 64 and info["degradation"]
    finally:
        worker.stop()
