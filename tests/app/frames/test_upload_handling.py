"""Upload handling at the ASGI level: the key is checked before the body is read, a body that
stalls is cut off with 408, and concurrent first uploads of a camera keep one audit reference."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from app import migrate
from tests import services
from tests.app.conftest import Archive
from tests.app.images import image_bytes

Message = dict[str, Any]


def _scope(path: str, headers: dict[str, str], method: str = "POST") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }


def _call(archive: Archive, scope: dict[str, Any], receive: Callable[[], Any]) -> list[Message]:
    """Run one request through the app (already started by the test client)."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(archive.client.app(scope, receive, send))  # type: ignore[arg-type]
    return sent


MULTIPART = {"content-type": "multipart/form-data; boundary=b0undary"}


@pytest.mark.parametrize("key", [None, "cctv_not-a-key"])
@pytest.mark.parametrize("path", ["/v1/frames", "/v1/restore-jobs"])
def test_a_body_is_not_read_before_the_key_is_checked(
    archive: Archive, key: str | None, path: str
) -> None:
    reads = 0

    async def endless_body() -> Message:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    headers = MULTIPART | ({"x-api-key": key} if key else {})
    sent = _call(archive, _scope(path, headers), endless_body)

    assert sent[0]["status"] == 401
    assert reads == 0
    assert b"unauthenticated" in b"".join(m.get("body", b"") for m in sent)


def test_a_body_that_stalls_is_cut_off_with_408(archive_factory: Any, settings_with: Any) -> None:
    archive = archive_factory(settings_with(body_timeout_s=0.5))
    chunks = [b'--b0undary\r\nContent-Disposition: form-data; name="camera_id"\r\n\r\ncam']

    async def stalling_body() -> Message:
        if chunks:
            return {"type": "http.request", "body": chunks.pop(), "more_body": True}
        await asyncio.sleep(20)  # the client sends nothing more, and keeps the connection
        raise AssertionError("the server waited for the stalled body")

    headers = MULTIPART | {"x-api-key": archive.keys["operator"]}
    sent = _call(archive, _scope("/v1/frames", headers), stalling_body)

    assert sent[0]["status"] == 408
    body = b"".join(m.get("body", b"") for m in sent)
    assert b"request_timeout" in body and b"0.5" in body


@pytest.fixture(params=["sqlite", "postgresql"])
def database_settings(request: pytest.FixtureRequest, settings_with: Any) -> Iterator[Any]:
    # Sampling so rare that only the "first frame of a camera" rule keeps references.
    if request.param == "sqlite":
        yield settings_with(audit_sample_rate=1e-9)
        return
    with services.postgres_database() as url:
        migrate.upgrade(url)
        yield settings_with(audit_sample_rate=1e-9, database_url=url)


def test_concurrent_first_uploads_of_a_camera_keep_one_reference(
    archive_factory: Any, database_settings: Any
) -> None:
    archive = archive_factory(database_settings)
    frames = [image_bytes(seed=seed) for seed in range(16)]
    with ThreadPoolExecutor(len(frames)) as pool:
        statuses = list(pool.map(lambda data: archive.upload(data, camera_id="new-cam"), frames))
    assert [r.status_code for r in statuses] == [201] * len(frames)

    with archive.runtime.engine.connect() as connection:
        references = connection.execute(
            sa.text("SELECT count(*) FROM frames WHERE reference_key IS NOT NULL")
        ).scalar_one()
    assert references == 1
    assert len([k for k in archive.blobs() if k.startswith("references/")]) == 1


class Overlap:
    """Wraps a function to count how many calls run at once; each call is made to last, so
    that concurrent uploads arrive meanwhile."""

    def __init__(self, inner: Callable[..., Any]) -> None:
        self.inner = inner
        self.running = self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(0.2)
            return self.inner(*args, **kwargs)
        finally:
            with self.lock:
                self.running -= 1


def upload_at_once(archive: Archive, uploads: list[bytes]) -> list[int]:
    """Each upload from a thread of its own; their statuses."""
    with ThreadPoolExecutor(len(uploads)) as pool:
        return list(pool.map(lambda data: archive.upload(data).status_code, uploads))


def test_concurrent_uploads_decode_at_most_max_concurrent_decodes_at_once(
    archive_factory: Any, settings_with: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.frames import service

    archive = archive_factory(settings_with(max_concurrent_decodes=2))
    decodes = Overlap(service.decode_upload)
    monkeypatch.setattr(service, "decode_upload", decodes)
    uploads = [image_bytes(seed=100 + i) for i in range(8)]
    assert upload_at_once(archive, uploads) == [201] * len(uploads)
    # Each decode holds up to ~max_pixels x 3 bytes (plus its working copies): the bound on
    # concurrent decodes is what bounds the server's memory.
    assert decodes.peak == 2


def test_at_most_one_upload_more_than_the_decode_slots_holds_a_worker_thread(
    archive_factory: Any, settings_with: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The others wait on the event loop without a thread (more threads only contend for the
    GIL), and are all archived in the end."""
    from app.frames import endpoints

    archive = archive_factory(settings_with(max_concurrent_decodes=1))
    ingests = Overlap(endpoints._ingest)
    monkeypatch.setattr(endpoints, "_ingest", ingests)
    uploads = [image_bytes(seed=200 + i) for i in range(6)]
    assert upload_at_once(archive, uploads) == [201] * len(uploads)
    assert ingests.peak == 2  # max_concurrent_decodes + 1


def test_the_decode_slot_is_free_while_the_blobs_are_written(
    archive_factory: Any, settings_with: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slot bounds decoded images in memory, not the fsyncs and SQL after them: while one
    upload's blobs are written, another upload may decode."""
    from app.frames import service

    archive = archive_factory(settings_with(max_concurrent_decodes=1, audit_sample_rate=1.0))
    store = archive.runtime.store
    real_put = store.put
    slot_free_at_put: list[bool] = []

    def put(key: str, data: bytes, **kwargs: Any) -> None:
        slot = service.decode_slots(1)
        free = slot.acquire(blocking=False)
        if free:
            slot.release()
        slot_free_at_put.append(free)
        real_put(key, data, **kwargs)

    monkeypatch.setattr(store, "put", put)
    assert archive.upload(image_bytes(seed=7)).status_code == 201
    # The stored frame and its audit reference, each written with the slot free.
    assert slot_free_at_put == [True, True]
