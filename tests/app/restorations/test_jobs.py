"""Restore jobs: POST /v1/restore-jobs, GET /v1/restore-jobs/{id}, and the task behind them."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from app.config import Settings
from app.errors import StorageUnavailable
from app.restorations.context import RestoreContext
from app.restorations.models import RestoreJob
from app.restorations.task import fail_restore_job, run_restore_job
from tests.app.conftest import Archive, GatedRestorer, wait_for_job
from tests.app.images import image_bytes


def frames(archive: Archive, n: int, camera_id: str = "cam-1", hour0: int = 10) -> list[str]:
    return [
        archive.frame_id(
            image_bytes(width=48, height=32, seed=100 * hour0 + i),
            camera_id=camera_id,
            captured_at=f"2024-05-01T{hour0 + i:02d}:00:00Z",
        )
        for i in range(n)
    ]


def post_job(archive: Archive, body: dict[str, Any], key: str = "investigator") -> Any:
    return archive.client.post("/v1/restore-jobs", json=body, headers=archive.as_key(key))


def test_job_for_frame_ids_restores_each_frame_into_the_cache(archive: Archive) -> None:
    ids = frames(archive, 3)
    response = post_job(archive, {"frame_ids": ids, "format": "webp"})

    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/restore-jobs/{job['id']}"
    assert job["total"] == 3 and job["format"] == "webp" and job["method"] == "edsr"
    assert job["requested_by"] == "investigator"

    done = wait_for_job(archive, job["id"])
    assert (done["state"], done["done"], done["failed"], done["pending"]) == ("done", 3, 0, 0)
    assert done["finished_at"] is not None
    assert [item["frame_id"] for item in done["items"]] == ids
    assert archive.count("restore_cache") == 3
    jobs_before = archive.count("restore_jobs")
    for item in done["items"]:
        fetched = archive.get(item["restored"] + "&wait=0")
        assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/webp"
    assert archive.count("restore_jobs") == jobs_before  # served from the cache, no new job


def test_job_for_a_camera_and_time_range_selects_those_frames(archive: Archive) -> None:
    ids = frames(archive, 4, "cam-1")
    frames(archive, 2, "cam-2")
    body = {"camera_id": "cam-1", "from": "2024-05-01T11:00:00Z", "to": "2024-05-01T13:00:00Z"}
    job = post_job(archive, body).json()
    assert [item["frame_id"] for item in job["items"]] == ids[1:3]
    assert wait_for_job(archive, job["id"])["done"] == 2


def test_job_reports_progress_while_running(
    archive_factory, settings, gated: GatedRestorer
) -> None:
    archive = archive_factory(settings.model_copy(update={"restore_batch_size": 1}), restorer=gated)
    ids = frames(archive, 2)
    job = post_job(archive, {"frame_ids": ids}).json()
    assert gated.entered.wait(10)
    running = archive.get(f"/v1/restore-jobs/{job['id']}").json()
    assert (running["state"], running["done"], running["total"]) == ("running", 0, 2)
    gated.gate.set()
    assert wait_for_job(archive, job["id"])["done"] == 2
    assert gated.batches == [1, 1]


def test_frames_that_cannot_be_restored_are_listed_with_the_reason(archive: Archive) -> None:
    ids = frames(archive, 2)
    archive.runtime.store.delete(f"frames/{ids[1][:2]}/{ids[1]}.png")
    job = wait_for_job(archive, post_job(archive, {"frame_ids": ids}).json()["id"])
    assert (job["state"], job["done"], job["failed"]) == ("done", 1, 1)
    assert job["errors"] == [
        {"frame_id": ids[1], "message": "the stored frame is missing from the blob store"}
    ]
    assert job["error"] == "1 of 2 frames could not be restored"


def test_job_whose_every_frame_failed_is_failed(archive: Archive) -> None:
    (frame_id,) = frames(archive, 1)
    archive.runtime.store.delete(f"frames/{frame_id[:2]}/{frame_id}.png")
    job = wait_for_job(archive, post_job(archive, {"frame_ids": [frame_id]}).json()["id"])
    assert job["state"] == "failed"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"frame_ids": []},
        {"frame_ids": ["a"], "camera_id": "cam-1"},
        {"frame_ids": ["a"], "from": "2024-05-01T00:00:00Z"},
        {"camera_id": "cam-1", "from": "2024-05-02T00:00:00Z", "to": "2024-05-01T00:00:00Z"},
        {"camera_id": "cam-1", "format": "tiff"},
        {"camera_id": "cam-1", "colour": "yes"},
    ],
    ids=["empty", "no-ids", "ids-and-camera", "ids-and-range", "range-reversed", "format", "extra"],
)
def test_malformed_job_requests_are_422(archive: Archive, body: dict[str, Any]) -> None:
    response = post_job(archive, body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert archive.count("restore_jobs") == 0


def test_unknown_frame_id_is_404_and_makes_no_job(archive: Archive) -> None:
    ids = frames(archive, 1)
    response = post_job(archive, {"frame_ids": [*ids, "f" * 32]})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "frame_not_found"
    assert archive.count("restore_jobs") == 0


def test_camera_range_without_frames_is_422(archive: Archive) -> None:
    response = post_job(archive, {"camera_id": "nobody"})
    assert response.status_code == 422
    assert "no frames" in response.json()["error"]["message"]


def test_job_over_the_frame_limit_is_422(archive_factory, settings) -> None:
    archive = archive_factory(settings.model_copy(update={"restore_job_max_frames": 2}))
    frames(archive, 3)
    response = post_job(archive, {"camera_id": "cam-1"})
    assert response.status_code == 422
    assert "at most 2" in response.json()["error"]["message"]


def test_unknown_job_is_404(archive: Archive) -> None:
    response = archive.get("/v1/restore-jobs/" + "0" * 32)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "restore_job_not_found"


# -- the task itself ------------------------------------------------------------------------


class NotQueued:
    """A queue that keeps job ids for the test to run by hand."""

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def submit(self, job_id: str) -> None:
        self.jobs.append(job_id)

    def check(self) -> None:
        pass

    def start(self) -> None:
        pass

    def resume(self) -> int:
        return 0  # a server whose jobs never run: nothing is resubmitted

    def stop(self) -> None:
        pass


def test_running_a_job_twice_restores_each_frame_once(
    archive_factory, settings, tiny_restorer
) -> None:
    queue = NotQueued()
    archive = archive_factory(settings, queue=queue)
    ids = frames(archive, 2)
    job_id = post_job(archive, {"frame_ids": ids}).json()["id"]
    runtime = archive.runtime
    context = RestoreContext(runtime.session_factory, runtime.store, tiny_restorer, settings)

    run_restore_job(job_id, context)
    blobs = archive.blobs()
    run_restore_job(job_id, context)  # a redelivered message

    assert queue.jobs == [job_id]
    assert archive.blobs() == blobs
    assert archive.count("restore_cache") == 2
    job = archive.get(f"/v1/restore-jobs/{job_id}").json()
    assert (job["state"], job["done"]) == ("done", 2)


def test_a_job_interrupted_midway_finishes_only_what_is_left(
    archive_factory, settings, tiny_restorer
) -> None:
    queue = NotQueued()
    archive = archive_factory(settings, queue=queue)
    ids = frames(archive, 2)
    job_id = post_job(archive, {"frame_ids": ids}).json()["id"]
    runtime = archive.runtime
    with runtime.session_factory.begin() as session:  # frame 0 done, then the worker died
        session.execute(
            sa.text("UPDATE restore_job_items SET state = 'done' WHERE frame_id = :f"),
            {"f": ids[0]},
        )
        session.execute(sa.text("UPDATE restore_jobs SET state = 'running'"))

    run_restore_job(
        job_id, RestoreContext(runtime.session_factory, runtime.store, tiny_restorer, settings)
    )

    job = archive.get(f"/v1/restore-jobs/{job_id}").json()
    assert (job["state"], job["done"]) == ("done", 2)
    assert archive.count("restore_cache") == 1  # only the frame still pending was restored


class Recording:
    """The tiny model, keeping the size of each batch it is asked for; `fail_on` makes that
    call (1-based) raise, and `started` is set when a batch after the first begins."""

    def __init__(self, model: Any, fail_on: int = 0) -> None:
        self.model, self.fail_on = model, fail_on
        self.batches: list[int] = []
        self.started = threading.Event()

    def restore(self, frames: list[Any]) -> list[Any]:
        self.batches.append(len(frames))
        if len(self.batches) > 1:
            self.started.set()
        if len(self.batches) == self.fail_on:
            raise RuntimeError("the model failed")
        return self.model.restore(frames)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


class FirstBatchStore:
    """The archive's store; each restored blob of the first batch is written only once the
    model has begun the next batch (at most 5 s), or refused when `refuse` is set."""

    def __init__(self, store: Any, model: Recording, first: set[str], refuse: bool) -> None:
        self.store, self.model, self.first, self.refuse = store, model, first, refuse
        self.overlapped: list[bool] = []

    def put(self, key: str, data: bytes, **kwargs: Any) -> None:
        if key.startswith("restored/") and key.split("/")[2] in self.first:
            if self.refuse:
                raise StorageUnavailable("the store refused a write")
            self.overlapped.append(self.model.started.wait(5))
        self.store.put(key, data, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def batched_job(
    archive_factory: Any,
    settings: Settings,
    tiny_restorer: Any,
    *,
    fail_on: int = 0,
    refuse: bool = False,
) -> tuple[Archive, str, RestoreContext, Recording, FirstBatchStore]:
    """A job of 4 frames in batches of 2, its context's model and store recording."""
    settings = settings.model_copy(update={"restore_batch_size": 2})
    archive = archive_factory(settings, queue=NotQueued())
    ids = frames(archive, 4)
    job_id = post_job(archive, {"frame_ids": ids}).json()["id"]
    model = Recording(tiny_restorer, fail_on=fail_on)
    store = FirstBatchStore(archive.runtime.store, model, set(ids[:2]), refuse)
    context = RestoreContext(archive.runtime.session_factory, store, model, settings)  # type: ignore[arg-type]
    return archive, job_id, context, model, store


def test_a_batch_is_saved_while_the_model_restores_the_next(
    archive_factory, settings, tiny_restorer
) -> None:
    archive, job_id, context, model, store = batched_job(archive_factory, settings, tiny_restorer)
    run_restore_job(job_id, context)
    assert model.batches == [2, 2]
    assert store.overlapped == [True, True]  # batch 1's blobs were written during batch 2
    assert archive.count("restore_cache") == 4
    job = archive.get(f"/v1/restore-jobs/{job_id}").json()
    assert (job["state"], job["done"]) == ("done", 4)


def test_a_model_error_is_raised_after_the_batch_before_it_is_saved(
    archive_factory, settings, tiny_restorer
) -> None:
    archive, job_id, context, model, _ = batched_job(
        archive_factory, settings, tiny_restorer, fail_on=2
    )
    with pytest.raises(RuntimeError, match="the model failed"):
        run_restore_job(job_id, context)
    assert model.batches == [2, 2]
    assert archive.count("restore_cache") == 2  # the first batch, whole
    job = archive.get(f"/v1/restore-jobs/{job_id}").json()
    assert (job["state"], job["done"], job["failed"]) == ("running", 2, 0)  # retried later


def test_a_failed_save_is_raised_and_leaves_no_blob_nor_entry(
    archive_factory, settings, tiny_restorer
) -> None:
    archive, job_id, context, model, _ = batched_job(
        archive_factory, settings, tiny_restorer, refuse=True
    )
    with pytest.raises(StorageUnavailable):
        run_restore_job(job_id, context)
    assert model.batches == [2, 2]  # the next batch was restored meanwhile, and not saved
    assert archive.count("restore_cache") == 0
    assert not [key for key in archive.blobs() if key.startswith("restored/")]
    job = archive.get(f"/v1/restore-jobs/{job_id}").json()
    assert (job["state"], job["done"]) == ("running", 0)


def test_fail_restore_job_fails_pending_frames_and_leaves_finished_jobs(
    archive_factory, settings
) -> None:
    archive = archive_factory(settings, queue=NotQueued())
    ids = frames(archive, 1)
    job_id = post_job(archive, {"frame_ids": ids}).json()["id"]
    factory = archive.runtime.session_factory

    fail_restore_job(job_id, "worker lost its GPU", session_factory=factory)
    fail_restore_job(job_id, "a later reason", session_factory=factory)

    job = archive.get(f"/v1/restore-jobs/{job_id}").json()
    assert (job["state"], job["error"], job["failed"]) == ("failed", "worker lost its GPU", 1)
    assert job["errors"][0]["message"] == "worker lost its GPU"


def test_unfinished_jobs_are_resumed_when_the_server_starts(archive_factory, settings_with) -> None:
    settings = settings_with()
    first = archive_factory(settings, queue=NotQueued())  # a server whose jobs never ran
    job_id = post_job(first, {"frame_ids": frames(first, 2)}).json()["id"]

    second = archive_factory(settings)  # the next start, with a real pool

    assert wait_for_job(second, job_id)["state"] == "done"


def test_job_state_is_recorded_in_the_database(archive: Archive) -> None:
    job_id = post_job(archive, {"frame_ids": frames(archive, 1)}).json()["id"]
    wait_for_job(archive, job_id)
    with archive.runtime.session_factory() as session:
        job = session.get(RestoreJob, job_id)
        assert job is not None
        assert job.attempts == 1 and job.started_at is not None


def test_the_job_view_says_how_long_the_job_has_waited(archive_factory, settings) -> None:
    archive = archive_factory(settings, queue=NotQueued())  # no worker ever takes it
    job_id = post_job(archive, {"frame_ids": frames(archive, 1)}).json()["id"]
    with archive.runtime.session_factory.begin() as session:  # accepted ten minutes ago
        job = session.get(RestoreJob, job_id)
        assert job is not None
        job.created_at = job.created_at - timedelta(minutes=10)

    view = archive.get(f"/v1/restore-jobs/{job_id}").json()

    assert view["state"] == "queued"
    assert 600 <= view["waited_s"] < 660


def test_an_investigator_resumes_a_failed_job(archive_factory, settings, tiny_restorer) -> None:
    queue = NotQueued()
    archive = archive_factory(settings, queue=queue)
    ids = frames(archive, 2)
    job_id = post_job(archive, {"frame_ids": ids}).json()["id"]
    fail_restore_job(job_id, "S3 unavailable", session_factory=archive.runtime.session_factory)
    assert archive.get(f"/v1/restore-jobs/{job_id}").json()["failed"] == 2

    response = archive.client.post(
        f"/v1/restore-jobs/{job_id}/resume", headers=archive.as_key("investigator")
    )

    assert response.status_code == 202, response.text
    resumed = response.json()
    assert (resumed["state"], resumed["pending"], resumed["failed"]) == ("queued", 2, 0)
    assert resumed["error"] is None and resumed["finished_at"] is None
    assert queue.jobs == [job_id, job_id]  # handed to the queue again
    runtime = archive.runtime
    run_restore_job(
        job_id, RestoreContext(runtime.session_factory, runtime.store, tiny_restorer, settings)
    )
    assert archive.get(f"/v1/restore-jobs/{job_id}").json()["done"] == 2


def test_only_a_failed_job_can_be_resumed(archive_factory, settings) -> None:
    archive = archive_factory(settings, queue=NotQueued())
    job_id = post_job(archive, {"frame_ids": frames(archive, 1)}).json()["id"]
    response = archive.client.post(
        f"/v1/restore-jobs/{job_id}/resume", headers=archive.as_key("investigator")
    )
    assert response.status_code == 409
    assert "queued" in response.json()["error"]["message"]
    unknown = archive.client.post(
        "/v1/restore-jobs/nope/resume", headers=archive.as_key("investigator")
    )
    assert unknown.status_code == 404


# -- jobs no worker owns ----------------------------------------------------------------------


def _orphan_job(archive: Archive, frame_id: str, minutes_ago: int = 60) -> str:
    """A job left queued by a failure that could not even be recorded (a full disk): in the
    database, in no worker's hands."""
    from app.db import unit_of_work
    from app.restorations.jobs import new_job
    from app.restorations.provenance import Method, OutputFormat

    with unit_of_work(archive.runtime.session_factory) as session:
        job = new_job(session, [frame_id], Method.edsr, OutputFormat.png, "investigator")
        job.created_at = job.updated_at = job.created_at - timedelta(minutes=minutes_ago)
        return job.id


def test_an_on_demand_restore_never_waits_on_a_job_no_worker_owns(archive: Archive) -> None:
    frame_id = frames(archive, 1)[0]
    orphan = _orphan_job(archive, frame_id)

    response = archive.get(f"/v1/frames/{frame_id}/restored?wait=20")

    assert response.status_code == 200, response.text  # restored by a job of its own
    assert response.headers["content-type"] == "image/png"
    assert archive.get(f"/v1/restore-jobs/{orphan}").json()["state"] == "queued"  # not attached


def test_housekeeping_resumes_a_job_no_worker_owns(archive: Archive) -> None:
    from app.runtime import housekeeping

    frame_id = frames(archive, 1)[0]
    orphan = _orphan_job(archive, frame_id)

    housekeeping(archive.runtime)

    job = wait_for_job(archive, orphan, timeout=20)
    assert (job["state"], job["done"]) == ("done", 1)


def test_housekeeping_leaves_alone_a_recent_job_it_cannot_see_the_owner_of(
    archive_factory, settings
) -> None:
    from app.runtime import housekeeping

    queue = NotQueued()  # like Celery: the queue cannot say who holds a job
    archive = archive_factory(settings, queue=queue)
    frame_id = frames(archive, 1)[0]
    recent = _orphan_job(archive, frame_id, minutes_ago=1)
    stale = _orphan_job(archive, frames(archive, 1, hour0=20)[0], minutes_ago=24 * 60)

    housekeeping(archive.runtime)

    assert queue.jobs == [stale]  # resubmitted; the recent one may well be in a worker's hands
    assert archive.get(f"/v1/restore-jobs/{recent}").json()["state"] == "queued"
