"""A scaled-out deployment for end-to-end tests: the API in-process (ASGI client), real Celery
worker processes, PostgreSQL, Redis and an S3 endpoint, all configured by CCTV_ variables."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from app import migrate
from app.auth.schemas import Scope
from app.auth.service import create_key
from app.config import Settings
from app.db import unit_of_work
from app.deps import Runtime
from app.main import create_app
from models import EDSR, EDSRConfig, Profile
from models.checkpoint import save_model
from tests import services
from tests.app.images import image_bytes

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's nudge towards httpx2; httpx is what we ship
    from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
# PNG rather than the default WebP lossless: the same pixels, but encoded in milliseconds instead
# of seconds, and these tests are about moving frames between processes, not about the codec.
PROFILE = "400:2:png"


def save_tiny_model(path: Path, *, n_resblocks: int = 1, n_feats: int = 8) -> Path:
    """An untrained model file for the default profile: workers and API load the same file, so
    the cache entries a worker writes are the ones the API looks up (same weights SHA-256)."""
    network = EDSR(EDSRConfig(n_resblocks=n_resblocks, n_feats=n_feats))
    degradation = Profile.parse(PROFILE).degradation_id
    save_model(path, network, name=f"e2e-{n_resblocks}x{n_feats}", degradation_id=degradation)
    return path


def frame_png(seed: int, size: int = 400) -> bytes:
    """A 400x400 scene as PNG: every seed gives different bytes (no idempotent dedupe)."""
    return image_bytes("PNG", width=size, height=size, seed=seed)


def scaled_out_env(
    tmp_path: Path,
    *,
    database_url: str,
    broker_url: str,
    s3: services.MotoServer,
    model: Path,
    **extra: str | int,
) -> dict[str, str]:
    """The CCTV_ environment shared by the API and its workers."""
    env = {
        "CCTV_ENVIRONMENT": "test",
        "CCTV_PROFILE": PROFILE,
        "CCTV_DATA_DIR": str(tmp_path / "data"),
        "CCTV_DATABASE_URL": database_url,
        "CCTV_STORAGE_URL": f"s3://{services.unique_bucket()}/archive",
        "CCTV_S3_CREATE_BUCKET": "true",
        "CCTV_RESTORE_BACKEND": "celery",
        "CCTV_BROKER_URL": broker_url,
        "CCTV_RESTORE_QUEUE": f"restore-{uuid.uuid4().hex[:8]}",
        "CCTV_MODEL": str(model),
        "CCTV_MODEL_DEVICE": "cpu",
        "CCTV_AUDIT_SAMPLE_RATE": "0",
        **s3.env(),
    }
    env.update({f"CCTV_{key.upper()}": str(value) for key, value in extra.items()})
    return env


def settings_from(env: dict[str, str]) -> Settings:
    values = {key.removeprefix("CCTV_").lower(): value for key, value in env.items()}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class CeleryWorker:
    """`python -m worker` (a prefork Celery worker on the restore queue) as a subprocess."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.name = f"e2e-{uuid.uuid4().hex[:8]}@%h"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        environ = (
            os.environ
            | self.env
            | {
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
                ),
                # Two cores are shared with the API under test: one thread per worker process.
                "OMP_NUM_THREADS": "1",
            }
        )
        command = [sys.executable, "-m", "worker", "-n", self.name, "--without-gossip"]
        command += ["--without-mingle", "--loglevel", "INFO"]
        with self.log.open("ab") as log:
            # A session of its own, so a test can kill the whole worker (parent and pool).
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(lambda: b" ready." in self.log.read_bytes(), timeout, "worker start", self)

    def pool_pids(self) -> list[int]:
        """The prefork pool's processes (the ones that run tasks)."""
        assert self.process is not None
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(child) for child in children]

    def kill_pool(self) -> None:
        """SIGKILL the pool processes only, as the kernel's OOM killer would."""
        for pid in self.pool_pids():
            os.kill(pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the worker and its pool: no shutdown, no acknowledgement, like a lost host."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def terminate(self, timeout: float = 30.0) -> None:
        """SIGTERM the worker's main process, as `docker stop` does, and wait for it to exit."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=timeout)
        self.process = None

    def __enter__(self) -> CeleryWorker:
        """Started; stopped on leaving the block (also when the start itself fails)."""
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # warm shutdown
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, worker: CeleryWorker | None = None
) -> Any:
    """Poll `condition` until it returns something truthy; fail with context after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    context = f"\n--- worker log ---\n{worker.tail()}" if worker else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{context}")


@dataclass
class Api:
    """The API under test and an API key allowed to ingest and read."""

    client: TestClient
    runtime: Runtime
    headers: dict[str, str] = field(default_factory=dict)

    def upload(self, data: bytes, camera_id: str = "cam-e2e") -> httpx.Response:
        return self.client.post(
            "/v1/frames",
            files={"file": ("frame.png", data, "image/png")},
            data={"camera_id": camera_id, "captured_at": "2024-05-01T12:00:00Z"},
            headers=self.headers,
        )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, headers=self.headers, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, headers=self.headers, **kwargs)

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.get(f"/v1/restore-jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def count(self, table: str) -> int:
        with self.runtime.engine.connect() as connection:
            return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


@contextmanager
def running_api(settings: Settings) -> Iterator[Api]:
    """Migrate the database, start the app (lifespan included), and make an API key."""
    migrate.upgrade(settings.database_url)
    with TestClient(create_app(settings)) as client:
        runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        with unit_of_work(runtime.session_factory) as session:
            _, secret = create_key("e2e", frozenset({Scope.ingest, Scope.read}), session=session)
        yield Api(client, runtime, {"X-API-Key": secret})
