"""The scaled-out archive when a part goes away mid-flight: the broker (Redis) or the blob store
(S3). Each test stops and restarts servers of its own, never the machine's shared ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.restorations.celery_queue import RETRY_AFTER_S
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

pytestmark = pytest.mark.slow


def test_redis_stopped_ingest_continues_restores_answer_503_and_nothing_is_lost(
    tmp_path: Path, database_url: str
) -> None:
    with services.moto_server() as s3, services.redis_server(tmp_path) as redis:
        env = scaled_out_env(
            tmp_path,
            database_url=database_url,
            broker_url=redis.url,
            s3=s3,
            model=save_tiny_model(tmp_path / "tiny.safetensors"),
        )
        worker = CeleryWorker(env, tmp_path / "worker.log")
        worker.start()
        try:
            with running_api(settings_from(env)) as api:
                before = api.upload(frame_png(1)).json()["id"]
                restored = api.get(f"/v1/frames/{before}/restored", params={"wait": 60})
                assert restored.status_code == 200, restored.text

                redis.stop()

                during = api.upload(frame_png(2))
                assert during.status_code == 201, during.text
                during_id = during.json()["id"]
                assert api.get(f"/v1/frames/{during_id}/stored").status_code == 200
                # What was already restored is served from the cache: it needs no broker.
                assert api.get(f"/v1/frames/{before}/restored").status_code == 200

                on_demand = api.get(f"/v1/frames/{during_id}/restored", params={"wait": 0})
                job = api.post("/v1/restore-jobs", json={"frame_ids": [during_id]})
                for refused in (on_demand, job):
                    assert refused.status_code == 503, refused.text
                    assert refused.headers["Retry-After"] == str(RETRY_AFTER_S)
                    assert refused.json()["error"]["code"] == "queue_unavailable"
                ready = api.client.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["checks"]["queue"] == "unavailable"

                redis.start()

                listed = api.get("/v1/frames").json()
                assert {frame["id"] for frame in listed["items"]} == {before, during_id}

                def restored_after_recovery() -> Any:
                    response = api.get(f"/v1/frames/{during_id}/restored", params={"wait": 5})
                    return response.status_code == 200

                # The worker reconnects to the restarted broker on its own.
                wait_until(restored_after_recovery, 90, "a restore after Redis came back", worker)
        finally:
            worker.stop()


def test_s3_stopped_mid_ingest_answers_503_and_leaves_no_row(
    tmp_path: Path, database_url: str
) -> None:
    with services.moto_server() as s3:
        env = scaled_out_env(
            tmp_path,
            database_url=database_url,
            broker_url="redis://127.0.0.1:1/0",  # no broker needed: nothing is restored here
            s3=s3,
            model=save_tiny_model(tmp_path / "tiny.safetensors"),
        )
        with running_api(settings_from(env)) as api:
            assert api.upload(frame_png(1)).status_code == 201
            store = api.runtime.store
            client = store._client  # type: ignore[attr-defined]

            # The endpoint dies after the frame was read, checked and downsampled, exactly
            # when its blob is being written.
            def endpoint_dies(**_: object) -> None:
                client.meta.events.unregister("before-send.s3.PutObject", endpoint_dies)
                s3.stop()

            client.meta.events.register("before-send.s3.PutObject", endpoint_dies)
            refused = api.upload(frame_png(2))
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "storage_unavailable"
            assert "Retry-After" in refused.headers
            assert api.count("frames") == 1  # no row for the blob that was never written

            s3.start()
            assert len(list(store.keys())) == 1  # and no blob either
            # The client retries as told, and the same frame is archived once.
            retried = api.upload(frame_png(2))
            assert retried.status_code == 201, retried.text
            assert api.count("frames") == 2
            assert len(list(store.keys())) == 2
