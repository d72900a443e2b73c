"""The scaled-out archive end to end: API + PostgreSQL + S3 (moto over HTTP) + Celery workers
(real prefork processes) on Redis, including a worker killed with SIGKILL in the middle of a job."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from app.restorations.models import CachedRestoration
from app.verify import verify
from tests import services
from tests.worker.deployment import (
    Api,
    CeleryWorker,
    frame_png,
    running_api,
    save_tiny_model,
    scaled_out_env,
    settings_from,
    wait_until,
)

pytestmark = pytest.mark.slow


def _job_state(api: Api, job_id: str, *states: str) -> dict | None:
    job = api.job(job_id)
    return job if job["state"] in states else None


def test_upload_restore_job_restored_frame_and_stats(
    tmp_path: Path, s3: services.MotoServer, database_url: str
) -> None:
    # The machine's shared Redis, on a database number and queue of this test's own.
    shared = services.require_redis()
    broker = shared.rsplit("/", 1)[0] + f"/{services.free_port() % 15 + 1}"
    env = scaled_out_env(
        tmp_path,
        database_url=database_url,
        broker_url=broker,
        s3=s3,
        model=save_tiny_model(tmp_path / "tiny.safetensors"),
    )
    worker = CeleryWorker(env, tmp_path / "worker.log")
    worker.start()
    try:
        with running_api(settings_from(env)) as api:
            uploads = [api.upload(frame_png(seed)) for seed in range(3)]
            assert [r.status_code for r in uploads] == [201, 201, 201], uploads[0].text
            frame_ids = [r.json()["id"] for r in uploads]

            created = api.post("/v1/restore-jobs", json={"frame_ids": frame_ids})
            assert created.status_code == 202, created.text
            job_id = created.json()["id"]
            job = wait_until(lambda: _job_state(api, job_id, "done", "failed"), 60, "job", worker)
            assert (job["state"], job["done"], job["total"]) == ("done", 3, 3), job

            restored = api.get(f"/v1/frames/{frame_ids[0]}/restored", params={"wait": 0})
            assert restored.status_code == 200, restored.text
            assert restored.headers["X-Restoration-Model"] == "e2e-1x8"
            assert Image.open(io.BytesIO(restored.content)).size == (400, 400)

            stats = api.get("/v1/stats/storage").json()["totals"]
            assert stats["frames"] == 3
            assert stats["bytes_uploaded"] == sum(len(frame_png(seed)) for seed in range(3))
            cache_blobs = list(api.runtime.store.keys("restored/"))
            assert stats["bytes_cache"] == sum(len(api.runtime.store.get(k)) for k in cache_blobs)
            expected = 1 - (stats["bytes_stored"] + stats["bytes_cache"]) / stats["bytes_uploaded"]
            assert stats["savings_ratio"] == pytest.approx(expected, abs=1e-6)

            # Everything landed in the scaled-out backends, not in local files.
            assert api.runtime.engine.dialect.name == "postgresql"
            keys = list(api.runtime.store.keys())
            assert sum(key.startswith("restored/") for key in keys) == 3
            assert api.count("frames") == 3
    finally:
        worker.stop()


@pytest.mark.parametrize("kill", ["pool process", "whole worker"])
def test_a_worker_killed_mid_job_does_not_lose_the_job(
    tmp_path: Path, s3: services.MotoServer, database_url: str, kill: str
) -> None:
    frames = 12
    with services.redis_server(tmp_path) as redis:
        env = scaled_out_env(
            tmp_path,
            database_url=database_url,
            broker_url=redis.url,
            s3=s3,
            # Slow enough to be caught mid-job (0.1 s a frame on a fast CPU, 0.4 s on an
            # AVX2-only Zen 1 VM, two passes each), one frame per batch.
            model=save_tiny_model(tmp_path / "medium.safetensors", n_resblocks=8, n_feats=32),
            restore_batch_size=1,
            # Short, so the test waits seconds, not the production hour, for redelivery; long
            # enough for a slow CPU to load the model and restore all 12 frames in one run (10 s
            # was not, on that VM).
            restore_time_limit_s=30,
            restore_visibility_timeout_s=32,
        )
        first = CeleryWorker(env, tmp_path / "worker-1.log")
        first.start()
        second = CeleryWorker(env, tmp_path / "worker-2.log")
        try:
            with running_api(settings_from(env)) as api:
                frame_ids, job_id = _upload_and_restore(api, frames)

                progress = lambda: _job_state(api, job_id, "running", "done", "failed")  # noqa: E731
                job = wait_until(lambda: (j := progress()) and j["done"] >= 1 and j, 60, "progress")
                if kill == "pool process":
                    first.kill_pool()  # the worker's parent survives and requeues at once
                else:
                    first.kill()
                    second.start()
                killed_at = api.job(job_id)
                assert job["state"] == "running" and killed_at["done"] < frames, (
                    "the job finished before the kill; make it slower"
                )

                logs = second if kill == "whole worker" else first
                done = wait_until(
                    lambda: _job_state(api, job_id, "done", "failed"), 90, "redelivery", logs
                )
                assert (done["state"], done["done"], done["failed"]) == ("done", frames, 0), done

                with api.runtime.session_factory() as session:
                    entries = session.scalars(sa.select(CachedRestoration)).all()
                    attempts = session.execute(
                        sa.text("SELECT attempts FROM restore_jobs WHERE id = :id"), {"id": job_id}
                    ).scalar_one()
                # Completed once: one cache entry per frame, each with its blob.
                assert sorted(entry.frame_id for entry in entries) == sorted(frame_ids)
                assert all(api.runtime.store.exists(entry.blob_key) for entry in entries)
                assert attempts == 2  # the killed run and the redelivered one

                # A blob the killed run wrote but never committed is an orphan that `verify`
                # finds and repairs; nothing the archive acknowledged is missing.
                found = verify(
                    session_factory=api.runtime.session_factory,
                    store=api.runtime.store,
                    repair=True,
                    grace_s=0,
                )
                assert found.frames_missing_blobs == [] and found.cache_missing_blobs == []
                again = verify(session_factory=api.runtime.session_factory, store=api.runtime.store)
                assert again.clean
        finally:
            first.stop()
            second.stop()


def test_a_stopped_worker_hands_its_job_back_at_once(
    tmp_path: Path, s3: services.MotoServer, database_url: str
) -> None:
    frames = 24
    with services.redis_server(tmp_path) as redis:
        env = scaled_out_env(
            tmp_path,
            database_url=database_url,
            broker_url=redis.url,
            s3=s3,
            model=save_tiny_model(tmp_path / "medium.safetensors", n_resblocks=8, n_feats=32),
            restore_batch_size=1,
            restore_shutdown_grace_s=1,
            # Long: a job that came back within it was handed back, not redelivered by Redis.
            restore_time_limit_s=100,
            restore_visibility_timeout_s=120,
        )
        first = CeleryWorker(env, tmp_path / "worker-1.log")
        first.start()
        second = CeleryWorker(env, tmp_path / "worker-2.log")
        try:
            with running_api(settings_from(env)) as api:
                _, job_id = _upload_and_restore(api, frames)
                wait_until(
                    lambda: (j := _job_state(api, job_id, "running")) and j["done"] >= 1,
                    60,
                    "progress",
                    first,
                )
                first.terminate()  # docker stop: SIGTERM, grace, then the job goes back
                stopped_at = api.job(job_id)
                assert stopped_at["done"] < frames, "the job finished within the grace period"

                second.start()
                done = wait_until(
                    lambda: _job_state(api, job_id, "done", "failed"), 60, "handover", second
                )
                assert (done["state"], done["done"], done["failed"]) == ("done", frames, 0), done
                assert "Restoring 1 unacknowledged message" in first.log.read_text()
        finally:
            first.stop()
            second.stop()


def _upload_and_restore(api: Api, frames: int) -> tuple[list[str], str]:
    """Upload `frames` distinct frames and ask for them as one restore job."""
    frame_ids = [api.upload(frame_png(seed)).json()["id"] for seed in range(frames)]
    return frame_ids, api.post("/v1/restore-jobs", json={"frame_ids": frame_ids}).json()["id"]
