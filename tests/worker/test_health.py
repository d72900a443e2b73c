"""`cctv-archive worker-check`: a restore worker is healthy only when one of its pool processes
runs a health task (the model loaded as a restore job loads it), not merely when it answers ping.
Real prefork workers on Redis (the machine's shared server, a database number and queue of each
test's own), the command run as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.restorations.celery_queue import make_celery
from tests import services
from tests.worker.deployment import (
    ROOT,
    CeleryWorker,
    save_tiny_model,
    scaled_out_env,
    settings_from,
    wait_until,
)

pytestmark = pytest.mark.slow


def _broker() -> str:
    shared = services.require_redis()
    return shared.rsplit("/", 1)[0] + f"/{services.free_port() % 15 + 1}"


def _tiny_model_env(tmp_path: Path, s3: services.MotoServer, database_url: str) -> dict[str, str]:
    """A scaled-out worker's environment with the 1x8 test model (`e2e-1x8`)."""
    model = save_tiny_model(tmp_path / "tiny.safetensors")
    return scaled_out_env(
        tmp_path, database_url=database_url, broker_url=_broker(), s3=s3, model=model
    )


def worker_check(
    env: dict[str, str], timeout: float, *extra: str
) -> subprocess.CompletedProcess[str]:
    environ = os.environ | env | {"PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "app", "worker-check", "--timeout", str(timeout), *extra]
    return subprocess.run(
        command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=timeout + 60
    )


def test_a_worker_whose_pool_runs_tasks_is_healthy(
    tmp_path: Path, s3: services.MotoServer, database_url: str
) -> None:
    env = _tiny_model_env(tmp_path, s3, database_url)
    with CeleryWorker(env, tmp_path / "worker.log") as worker:
        result = worker_check(env, timeout=60)
    assert result.returncode == 0, (result.stdout, result.stderr, worker.tail())
    assert result.stdout.startswith("healthy: restore worker e2e-"), result.stdout
    assert "(model e2e-1x8)" in result.stdout


def test_a_worker_loads_its_model_when_it_starts_not_in_its_first_task(
    tmp_path: Path, s3: services.MotoServer, database_url: str
) -> None:
    env = _tiny_model_env(tmp_path, s3, database_url)
    with CeleryWorker(env, tmp_path / "worker.log") as worker:
        wait_until(
            lambda: b"restore worker: model e2e-1x8 on cpu" in worker.log.read_bytes(),
            60,
            "the model loaded at start",
            worker,
        )
    assert b"received" not in worker.log.read_bytes(), worker.tail()  # no task ran


def test_a_named_worker_answers_for_itself_and_an_absent_one_is_unhealthy(
    tmp_path: Path, s3: services.MotoServer, database_url: str
) -> None:
    """A container's healthcheck must judge its own worker, not whichever worker is free."""
    env = _tiny_model_env(tmp_path, s3, database_url)
    with CeleryWorker(env, tmp_path / "worker.log") as worker:
        name = worker.name.replace("%h", socket.gethostname())
        own = worker_check(env, 60, "--worker", name)
        absent = worker_check(env, 2, "--worker", "celery@no-such-host")
    assert own.returncode == 0, (own.stdout, own.stderr, worker.tail())
    assert own.stdout.startswith(f"healthy: restore worker {name} ran a health task"), own.stdout
    assert absent.returncode == 1, (absent.stdout, absent.stderr)
    assert absent.stdout.strip() == (
        "unhealthy: restore worker 'celery@no-such-host' did not complete a health task within "
        "2 s (not running, unable to run tasks, or busy)"
    )


def test_a_worker_that_answers_ping_but_cannot_load_its_model_is_unhealthy(
    tmp_path: Path, s3: services.MotoServer, database_url: str
) -> None:
    env = scaled_out_env(
        tmp_path,
        database_url=database_url,
        broker_url=_broker(),
        s3=s3,
        model=tmp_path / "missing.safetensors",
    )
    # It starts: the model is loaded beside the pool, which logs the failure.
    with CeleryWorker(env, tmp_path / "worker.log") as worker:
        wait_until(
            lambda: b"the model could not be loaded at start" in worker.log.read_bytes(),
            60,
            "the failed load logged",
            worker,
        )
        # Celery's own check (what the compose healthcheck used) finds nothing wrong.
        name = worker.name.replace("%h", socket.gethostname())
        pong = make_celery(settings_from(env)).control.ping(destination=[name], timeout=5)
        assert pong == [{name: {"ok": "pong"}}]
        result = worker_check(env, timeout=60)
    assert result.returncode == 1, (result.stdout, result.stderr, worker.tail())
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith("unhealthy: restore worker e2e-"), lines
    assert "cannot load the model or its stores" in lines[0]
    assert str(tmp_path) not in lines[0]  # the kind of failure, not the worker's paths
    assert len(lines[0]) <= 300


def test_no_worker_on_the_queue_is_unhealthy_within_the_timeout(
    tmp_path: Path, s3: services.MotoServer
) -> None:
    env = scaled_out_env(
        tmp_path,
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        broker_url=_broker(),
        s3=s3,
        model=tmp_path / "unused.safetensors",
    )
    result = worker_check(env, timeout=2)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout.strip() == (
        f"unhealthy: no restore worker on queue {env['CCTV_RESTORE_QUEUE']!r} completed a "
        "health task within 2 s (none running, none able to run tasks, or all busy)"
    )


def test_worker_check_refuses_the_in_process_backend(tmp_path: Path) -> None:
    env = {
        "CCTV_ENVIRONMENT": "test",
        "CCTV_DATA_DIR": str(tmp_path / "data"),
        "CCTV_RESTORE_BACKEND": "inprocess",
    }
    result = worker_check(env, timeout=1)
    assert result.returncode != 0
    assert "worker-check needs CCTV_RESTORE_BACKEND=celery" in result.stderr + result.stdout
