"""Real services for tests: PostgreSQL, Redis, an S3 endpoint (moto over HTTP).

Each `require_*` skips the calling test with the reason when the service is absent, except in
CI (`CI=true`), where an absent service is a broken environment and the test fails instead.
Fault tests never touch the machine's shared servers: they start their own `redis-server` and
their own moto server on free ports, and stop those.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get(
    "CCTV_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("CCTV_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(reason: str) -> None:
    """Skip with `reason`, or fail in CI where every service must be up."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: services must be running, see .ci/run)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 10.0, up: bool = True) -> None:
    """Wait until 127.0.0.1:port accepts connections (or, with up=False, refuses them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not come {'up' if up else 'down'} in {timeout}s")


# -- PostgreSQL ------------------------------------------------------------------------------


def require_postgres(url: str = POSTGRES_URL) -> str:
    """The admin URL of a reachable PostgreSQL, or skip/fail."""
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        unavailable(f"PostgreSQL not reachable at {url}: {type(exc).__name__}: {exc}")
    return url


@contextmanager
def postgres_database(admin_url: str | None = None) -> Iterator[str]:
    """A brand-new database with a unique name, dropped afterwards; yields its URL."""
    import sqlalchemy as sa

    admin_url = require_postgres(admin_url or POSTGRES_URL)
    name = f"cctv_test_{uuid.uuid4().hex[:12]}"
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- Redis -----------------------------------------------------------------------------------


def require_redis(url: str = REDIS_URL) -> str:
    """The URL of a reachable Redis, or skip/fail."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        unavailable(f"Redis not reachable at {url}: {type(exc).__name__}: {exc}")
    return url


class RedisServer:
    """A private `redis-server` on a free port that a test may stop and start again."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server binary not found on PATH")
        self.binary = str(binary)
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # No persistence: a restart is a fresh, empty broker unless the test says otherwise.
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
        wait_for_port(self.port, up=False)


@contextmanager
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- S3 (moto) -------------------------------------------------------------------------------


class MotoServer:
    """A real S3 endpoint over HTTP (moto's server in a thread of this process).

    moto keeps its state in process globals, so a stop/start keeps the buckets: like an S3
    endpoint that went away on the network and came back. Tests use unique bucket names.
    """

    access_key_id = "testing"
    secret_access_key = "testing"
    region = "us-east-1"

    def __init__(self) -> None:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            unavailable(f"moto[server] is not installed: {exc}")
        self._factory = ThreadedMotoServer
        self.port = free_port()
        self._server: object | None = None
        # One log line per request drowns the test output.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        server = self._factory(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self._server = server
        wait_for_port(self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()  # type: ignore[attr-defined]
            self._server = None
        wait_for_port(self.port, up=False)

    def env(self) -> dict[str, str]:
        """CCTV_ settings that point the service at this endpoint."""
        return {
            "CCTV_S3_ENDPOINT_URL": self.endpoint_url,
            "CCTV_S3_REGION": self.region,
            "CCTV_S3_ACCESS_KEY_ID": self.access_key_id,
            "CCTV_S3_SECRET_ACCESS_KEY": self.secret_access_key,
        }


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def unique_bucket() -> str:
    return f"cctv-test-{uuid.uuid4().hex[:12]}"
