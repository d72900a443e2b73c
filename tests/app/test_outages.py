"""Outages of a dependency are 503 with Retry-After, logged once; readiness checks a real write."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
import sqlalchemy as sa

from app import migrate
from app.config import Settings
from tests import services
from tests.app.conftest import make_settings
from tests.app.images import image_bytes


@contextmanager
def tcp_proxy(target_port: int) -> Iterator[Any]:
    """A TCP forwarder to 127.0.0.1:target_port; `stop()` closes it and every connection, as a
    database server going down does."""
    listener = socket.create_server(("127.0.0.1", 0))
    sockets: list[socket.socket] = [listener]
    stopped = threading.Event()

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def accept() -> None:
        while not stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", target_port))
            sockets.extend((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    class Proxy:
        port = listener.getsockname()[1]

        @staticmethod
        def stop() -> None:
            stopped.set()
            for sock in sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield Proxy
    finally:
        Proxy.stop()


def _assert_outage(response: Any, code: str) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    error = response.json()["error"]
    assert error["code"] == code
    assert "Traceback" not in error["message"] and len(error["message"]) < 300


def test_postgresql_down_is_503_with_retry_after_logged_once(
    archive_factory: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with services.postgres_database() as url:
        migrate.upgrade(url)
        real = sa.make_url(url)
        with tcp_proxy(real.port or 5432) as proxy:
            proxied = real.set(port=proxy.port).render_as_string(hide_password=False)
            settings = make_settings(tmp_path, tmp_path / "unused.db", database_url=proxied)
            archive = archive_factory(settings)
            assert archive.upload(camera_id="pg").status_code == 201
            proxy.stop()
            caplog.clear()
            with caplog.at_level(logging.INFO):
                upload = archive.upload(image_bytes(seed=5), camera_id="pg")
                listing = archive.get("/v1/frames")
            _assert_outage(upload, "database_unavailable")
            _assert_outage(listing, "database_unavailable")
            # One line per failed request, none of them a traceback (ours or the server's).
            errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(errors) == 2, [r.getMessage() for r in errors]
            assert all(r.exc_info is None for r in errors)


def test_sqlite_database_full_is_503_with_retry_after(
    archive_factory: Any, settings: Settings
) -> None:
    archive = archive_factory(settings)
    engine = archive.runtime.engine

    @sa.event.listens_for(engine, "checkout")
    def no_more_pages(dbapi_connection: Any, *_: Any) -> None:
        # The database may not grow past the pages it has: SQLite answers "database or disk is
        # full", exactly as on a full disk.
        dbapi_connection.execute("PRAGMA max_page_count = 1")

    statuses = []
    for seed in range(200):
        response = archive.upload(image_bytes(seed=seed))
        statuses.append(response.status_code)
        if response.status_code != 201:
            break
    assert statuses[-1] == 503, statuses
    _assert_outage(response, "database_unavailable")
    assert "full" in response.json()["error"]["message"]
