"""The restore task's retry and failure rules, run eagerly on a real (SQLite) job row."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from app import migrate
from app.db import make_engine, make_session_factory, unit_of_work, utcnow
from app.errors import StorageUnavailable
from app.restorations.models import RestoreJob
from worker import tasks


@pytest.fixture
def session_factory(tmp_path: Path) -> Iterator[Any]:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine=engine)
    now = utcnow()
    with unit_of_work(factory) as session:
        session.add(
            RestoreJob(
                id="job-1",
                state="queued",
                method="edsr",
                format="png",
                requested_by="test",
                created_at=now,
                updated_at=now,
                attempts=0,
            )
        )
    yield factory
    engine.dispose()


@pytest.fixture
def runs(
    session_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> Callable[[Callable[[int], None]], list[int]]:
    """Install `behaviour(attempt)` as run_restore_job; returns the attempts it saw."""
    context = SimpleNamespace(session_factory=session_factory)
    monkeypatch.setattr(tasks, "restore_context", lambda: context)
    # Each retry counts a minute of waiting (eager tasks retry at once, so the test waits none).
    monkeypatch.setattr(tasks, "backoff_s", lambda retries: 60.0)

    def install(behaviour: Callable[[int], None]) -> list[int]:
        attempts: list[int] = []

        def run_restore_job(job_id: str, context: object) -> None:
            attempts.append(len(attempts) + 1)
            behaviour(len(attempts))

        monkeypatch.setattr(tasks, "run_restore_job", run_restore_job)
        return attempts

    return install


def _job(session_factory: Any) -> RestoreJob:
    with session_factory() as session:
        job = session.scalar(sa.select(RestoreJob).where(RestoreJob.id == "job-1"))
        assert job is not None
        return job


def test_a_transient_error_is_retried_and_then_succeeds(runs: Any, session_factory: Any) -> None:
    def flaky(attempt: int) -> None:
        if attempt == 1:
            raise StorageUnavailable("S3 endpoint went away")

    attempts = runs(flaky)
    tasks.restore_job.apply(args=["job-1"])
    assert attempts == [1, 2]
    assert _job(session_factory).state == "queued"  # untouched by the task shell itself


def test_a_job_that_keeps_failing_ends_failed_with_its_reason(
    runs: Any, session_factory: Any
) -> None:
    def down(attempt: int) -> None:
        raise StorageUnavailable("S3 endpoint went away")

    attempts = runs(down)
    tasks.restore_job.apply(args=["job-1"])
    # Retried for the whole window, a minute at a time, then failed: bounded, no retry loop.
    assert len(attempts) == tasks.RETRY_WINDOW_S / 60 + 1
    job = _job(session_factory)
    assert job.state == "failed"
    assert job.error is not None
    assert "S3 endpoint went away" in job.error
    assert f"after {len(attempts)} attempts over {tasks.RETRY_WINDOW_S:.0f} s" in job.error


def test_a_permanent_error_fails_the_job_at_once(runs: Any, session_factory: Any) -> None:
    def broken(attempt: int) -> None:
        raise ValueError("model file is corrupt")

    attempts = runs(broken)
    tasks.restore_job.apply(args=["job-1"])
    assert attempts == [1]
    job = _job(session_factory)
    assert job.state == "failed"
    assert job.error == "ValueError: model file is corrupt"


def test_a_database_that_went_away_is_transient() -> None:
    lost = sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    assert tasks.is_transient(lost)
    assert tasks.is_transient(StorageUnavailable("down"))
    assert not tasks.is_transient(ValueError("bad"))


def test_backoff_grows_and_stays_bounded() -> None:
    for retries in range(12):
        ceiling = min(tasks.BACKOFF_MAX_S, tasks.BACKOFF_BASE_S * 2**retries)
        assert all(ceiling / 2 <= tasks.backoff_s(retries) <= ceiling for _ in range(20))
    assert tasks.BACKOFF_MAX_S * 10 < 3600  # far inside the default visibility timeout


def test_a_transient_outage_is_retried_for_minutes_not_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks.random, "uniform", lambda low, high: low)  # the shortest jitter
    retried_for, retries = 0.0, 0
    while (delay := tasks.retry_delay_s(retries, retried_for)) is not None:
        retried_for += delay
        retries += 1
    # Even at the shortest waits, an S3 outage of several minutes is outlasted (one of 26 s
    # failed jobs for good when 5 retries took 6 s), and the retrying still ends.
    assert retried_for >= 5 * 60
    assert retried_for < tasks.RETRY_WINDOW_S + tasks.BACKOFF_MAX_S
    assert retries < 30


def test_a_pool_process_starts_loading_its_model_without_waiting_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from celery.signals import worker_process_init

    from app.restorations.context import RestoreContext

    loading, release = threading.Event(), threading.Event()
    built: list[object] = []

    def from_settings(settings: object) -> SimpleNamespace:
        loading.set()
        release.wait(30)
        built.append(settings)
        restorer = SimpleNamespace(
            name="m", device="cpu", weights_sha256="0" * 64, degradation_id="d", engine="torch"
        )
        return SimpleNamespace(restorer=restorer)

    monkeypatch.setattr(RestoreContext, "from_settings", from_settings)
    monkeypatch.setattr(tasks, "_context", None)

    worker_process_init.send(sender=None)  # what Celery sends in each new pool process
    # The hook returned while the model was still loading: loading a model in it missed
    # Celery's 4 s start-up deadline under load (killed in a loop). A thread loads it.
    assert loading.wait(10) and not built

    # A task that comes now waits for that load and shares its result.
    got: list[object] = []
    task = threading.Thread(target=lambda: got.append(tasks.restore_context()))
    task.start()
    task.join(0.3)
    assert task.is_alive() and not got
    release.set()
    task.join(10)
    assert got == [tasks._context] and len(built) == 1


def test_the_restore_bundle_is_built_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.restorations.context import RestoreContext

    built: list[object] = []

    def from_settings(settings: object) -> SimpleNamespace:
        built.append(settings)
        restorer = SimpleNamespace(
            name="m", device="cpu", weights_sha256="0" * 64, degradation_id="d", engine="torch"
        )
        return SimpleNamespace(restorer=restorer)

    monkeypatch.setattr(tasks, "_context", None)
    monkeypatch.setattr(RestoreContext, "from_settings", from_settings)

    first = tasks.restore_context()
    second = tasks.restore_context()
    assert first is second
    assert len(built) == 1
