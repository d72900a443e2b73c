"""Fixtures for the service: a migrated SQLite file and a blob folder per test, a tiny model, the
app through an ASGI test client, API keys of each kind, and a model that waits for the test."""

from __future__ import annotations

import itertools
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import StarletteDeprecationWarning

from app import migrate
from app.auth.schemas import Scope
from app.auth.service import create_key
from app.config import Settings
from app.db import make_engine, make_session_factory, unit_of_work
from app.main import create_app
from app.runtime import Runtime
from models import EDSRConfig, Restorer
from tests import services
from tests.app.images import image_bytes

with warnings.catch_warnings():
    # Starlette would rather the test client ran on httpx2; httpx is what this project ships.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

CAPTURED_AT = "2024-05-01T12:00:00Z"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database on SQLite and on PostgreSQL (for tests that take `database_url`)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'archive.db'}"
        return
    with services.postgres_database() as url:
        yield url


@pytest.fixture
def migrated(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on `database_url` (SQLite, then PostgreSQL), migrated to the latest revision."""
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    yield make_session_factory(engine=engine)
    engine.dispose()


@pytest.fixture(scope="session")
def tiny_restorer() -> Restorer:
    """An untrained one-block network: restores in milliseconds, same interface as the real one."""
    return Restorer.from_config(EDSRConfig(n_resblocks=1, n_feats=8), name="tiny-test")


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty database at the latest migration, made once and copied for each test."""
    path = tmp_path_factory.mktemp("template") / "archive.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def settings_with(tmp_path: Path, migrated_db: Path) -> Callable[..., Settings]:
    """`settings_with(**overrides)`: test settings on a fresh copy of the migrated database
    (each call its own database; the same blob folder)."""
    databases = itertools.count()

    def make(**overrides: Any) -> Settings:
        database = tmp_path / f"archive-{next(databases)}.db"
        shutil.copyfile(migrated_db, database)
        return make_settings(tmp_path, database, **overrides)

    return make


@pytest.fixture
def settings(settings_with: Callable[..., Settings]) -> Settings:
    return settings_with()


def make_settings(tmp_path: Path, database: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        # PNG, not the default WebP lossless: the same pixels, encoded ~50x faster.
        "profile": "400:2:png",
        "data_dir": tmp_path / "data",
        "database_url": f"sqlite:///{database}",
        "storage_url": f"file://{tmp_path / 'blobs'}",
        "audit_sample_rate": 0.0,
        "restore_wait_s": 10.0,
        "restore_cache_sweep_s": 3600.0,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


@dataclass
class Archive:
    """The running app, its shared runtime, and a key per role."""

    client: TestClient
    runtime: Runtime
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def as_key(self, name: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[name]}

    def upload(
        self,
        data: bytes | None = None,
        *,
        camera_id: str = "cam-1",
        captured_at: str = CAPTURED_AT,
        key: str = "operator",
        headers: dict[str, str] | None = None,
        **form: Any,
    ) -> httpx.Response:
        data = image_bytes() if data is None else data
        return self.client.post(
            "/v1/frames",
            files={"file": ("frame.bin", data, "application/octet-stream")},
            data={"camera_id": camera_id, "captured_at": captured_at, **form},
            headers=self.as_key(key) | (headers or {}),
        )

    def frame_id(self, data: bytes | None = None, **kwargs: Any) -> str:
        response = self.upload(data, **kwargs)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def get(self, path: str, *, key: str = "operator", **kwargs: Any) -> httpx.Response:
        return self.client.get(path, headers=self.as_key(key), **kwargs)

    def blobs(self) -> list[str]:
        return sorted(self.runtime.store.keys())

    def count(self, table: str) -> int:
        import sqlalchemy as sa

        with self.runtime.engine.connect() as connection:
            return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def add_keys(runtime: Runtime) -> dict[str, str]:
    roles = {
        "operator": {Scope.ingest, Scope.read},
        "camera": {Scope.ingest},
        "investigator": {Scope.read},
        "admin": {Scope.admin},
    }
    keys = {}
    with unit_of_work(runtime.session_factory) as session:
        for name, scopes in roles.items():
            keys[name] = create_key(name, frozenset(scopes), session=session)[1]
    return keys


@pytest.fixture
def archive_factory(tiny_restorer: Restorer) -> Iterator[Any]:
    """Start an app on given settings (and optional restorer/queue); stopped at teardown."""
    clients: list[TestClient] = []
    keys: dict[str, dict[str, str]] = {}  # by database: a restarted app keeps its keys

    def start(settings: Settings, **kwargs: Any) -> Archive:
        kwargs.setdefault("restorer", tiny_restorer)
        app = create_app(settings, **kwargs)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        runtime: Runtime = app.state.runtime
        if settings.database_url not in keys:
            keys[settings.database_url] = add_keys(runtime)
        return Archive(client=client, runtime=runtime, keys=keys[settings.database_url])

    yield start
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def archive(archive_factory: Any, settings: Settings) -> Archive:
    archive: Archive = archive_factory(settings)
    return archive


class GatedRestorer:
    """The tiny model, but `restore` blocks until `gate` is set; records each batch size."""

    def __init__(self, inner: Restorer) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.batches: list[int] = []
        self.entered = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def restore(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        self.batches.append(len(frames))
        self.entered.set()
        if not self.gate.wait(30):
            raise TimeoutError("test never opened the gate")
        return self.inner.restore(frames)


@pytest.fixture
def gated(archive_factory: Any, tiny_restorer: Restorer) -> Iterator[GatedRestorer]:
    # Depends on archive_factory so the gate opens before the apps stop (threads can finish).
    restorer = GatedRestorer(tiny_restorer)
    yield restorer
    restorer.gate.set()


@pytest.fixture
def gated_archive(archive_factory: Any, settings: Settings, gated: GatedRestorer) -> Archive:
    archive: Archive = archive_factory(settings, restorer=gated)
    return archive


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def wait_for_job(archive: Archive, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
    job: dict[str, Any] = {}

    def finished() -> bool:
        job.update(archive.get(f"/v1/restore-jobs/{job_id}").json())
        return job["state"] in ("done", "failed")

    wait_for(finished, timeout)
    return job
