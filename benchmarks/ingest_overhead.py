"""What an upload costs the server besides its image work: CPU per upload with the image work
replaced by a cached result, so that only the SQL, the blob writes, the hashing and the web stack
remain.

    python benchmarks/ingest_overhead.py [--uploads 300] [--rounds 5] [--http-clients 4]

Five rows, each the median (and range) over `--rounds` rounds of `--uploads` distinct uploads on
a fresh SQLite archive in a temporary folder; the first three on one thread:
- `ingest_frame`: the service call in its own unit of work (the queries, the blob write with its
  fsyncs, the commit, the hashes);
- the key look-up the key-before-body middleware makes for every upload;
- the whole request through the ASGI app (middleware, FastAPI's dependencies and form parsing,
  the thread hand-offs, the answer), without an HTTP server: process CPU per upload;
- the web stack alone: the same, with the route's call into the service (`_ingest`: the body
  read, `ingest_frame`) replaced by its first result, so no writes and no SQL but the
  middleware's key look-up: the framework's and the middleware's share, steadier than the rows
  that wait on fsync;
- the whole request over HTTP: a real `cctv-archive serve` (uvicorn) taking the uploads from
  `--http-clients` concurrent clients, its process's CPU per upload (all threads), as
  benchmarks/ingest.py measures it with the image work done (0 clients: row left out).
The image work is done for real once per kind (with and without a reference) and then reused;
the server does the same in its own process (this script is its launcher, `AS_SERVER`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import http_rate, make_frames, multipart_upload  # benchmarks/ingest.py, beside it
from server import serve  # benchmarks/server.py

from app import migrate
from app.auth.schemas import Scope
from app.auth.service import create_key
from app.config import Settings
from app.db import make_session_factory, unit_of_work
from app.frames import endpoints, service
from app.main import create_app
from app.middleware import lookup_key
from app.storage import build_store
from models import Profile

PROFILE = "400:2:webp-lossless"
# `python ingest_overhead.py AS_SERVER serve ...`: the CLI's serve, image work cached.
AS_SERVER = "--as-server-with-cached-image-work"


@contextmanager
def cached_image_work() -> Iterator[None]:
    """`service._image_work` done once per kind of call, its result reused after that."""
    real = service._image_work
    done: dict[bool, service.ImageWork] = {}

    def cached(data: bytes, profile: Profile, settings: Settings, *, reference: bool) -> Any:
        if reference not in done:
            done[reference] = real(data, profile, settings, reference=reference)
        return done[reference]

    with mock.patch.object(service, "_image_work", cached):
        yield


def archive_settings(folder: Path) -> Settings:
    url = f"sqlite:///{folder / 'archive.db'}"
    migrate.upgrade(url)
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="test",
        data_dir=folder / "data",
        database_url=url,
        storage_url=f"file://{folder / 'blobs'}",
        profile=PROFILE,
    )


def per_call_ms(calls: Callable[[int], None], count: int, clock: Callable[[], float]) -> float:
    started = clock()
    for index in range(count):
        calls(index)
    return (clock() - started) / count * 1e3


def service_rows(
    settings: Settings, frame: bytes, uploads: int, rounds: int
) -> dict[str, list[float]]:
    factory = make_session_factory(settings)
    store = build_store(settings)
    profile = Profile.parse(settings.profile)
    with unit_of_work(factory) as session:
        key = create_key("bench", frozenset({Scope.ingest}), session=session)[1]
    rows: dict[str, list[float]] = {"ingest_frame": [], "key look-up": []}
    for round_ in range(rounds):

        def ingest(index: int, round_: int = round_) -> None:
            data = frame + f"{round_}-{index}".encode()  # distinct bytes: never a repeat
            upload = service.Upload(data, "bench", datetime.now(UTC), [])
            with unit_of_work(factory) as session:
                service.ingest_frame(
                    upload, session=session, store=store, profile=profile, settings=settings
                )

        def look_up(_index: int) -> None:
            lookup_key(factory, key)

        rows["ingest_frame"].append(per_call_ms(ingest, uploads, time.thread_time))
        rows["key look-up"].append(per_call_ms(look_up, uploads, time.thread_time))
    return rows


@contextmanager
def cached_service_call() -> Iterator[None]:
    """The upload route's call into the service (`endpoints._ingest`) made once, its result
    reused: every later request answers 201 with the first frame."""
    real = endpoints._ingest
    done: list[Any] = []

    def cached(*args: Any, **kwargs: Any) -> Any:
        if not done:
            done.append(real(*args, **kwargs))
        return done[0]

    with mock.patch.object(endpoints, "_ingest", cached):
        yield


async def request_rounds(
    settings: Settings, frame: bytes, uploads: int, rounds: int, *, web_only: bool = False
) -> list[float]:
    """Process CPU per upload through the ASGI app, one request at a time (`web_only`: with the
    service call cached)."""
    app = create_app(settings)
    with cached_service_call() if web_only else nullcontext():
        async with app.router.lifespan_context(app):
            return await _rounds(app, frame, uploads, rounds)


async def _rounds(app: Any, frame: bytes, uploads: int, rounds: int) -> list[float]:
    with unit_of_work(app.state.runtime.session_factory) as session:
        key = create_key("asgi", frozenset({Scope.ingest}), session=session)[1]
    results = []
    for round_ in range(rounds):
        requests = [
            multipart_upload(frame + f"asgi-{round_}-{i}".encode(), "asgi", "2024-05-01T12:00Z")
            for i in range(uploads)
        ]
        started = time.process_time()
        for content_type, body in requests:
            await _post(app, key, content_type, body)
        results.append((time.process_time() - started) / uploads * 1e3)
    return results


async def _post(app: Any, key: str, content_type: str, body: bytes) -> None:
    headers = [
        (b"host", b"bench"),
        (b"x-api-key", key.encode()),
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/frames",
        "raw_path": b"/v1/frames",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    statuses = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    if statuses != [201]:
        raise RuntimeError(f"upload answered {statuses}")


def http_rounds(folder: Path, frame: bytes, uploads: int, rounds: int, clients: int) -> list[float]:
    """Server CPU per upload (ms, all its threads) over HTTP, image work cached in the server."""
    launcher = (str(Path(__file__).resolve()), AS_SERVER)
    with serve(folder, {"CCTV_PROFILE": PROFILE}, launcher=launcher) as server:
        warm = [frame + f"warm-{i}".encode() for i in range(2 * clients)]
        http_rate(server, warm, clients, "warm")  # each kind of image work done once
        results = []
        for round_ in range(rounds):
            batch = [frame + f"http-{round_}-{i}".encode() for i in range(uploads)]
            results.append(http_rate(server, batch, clients, f"r{round_}").server_cpu_ms)
    return results


def table(rows: dict[str, list[float]]) -> str:
    lines = ["| what | CPU per upload (ms), median | range |", "|---|---|---|"]
    for name, values in rows.items():
        median, low, high = statistics.median(values), min(values), max(values)
        lines.append(f"| {name} | {median:.2f} | {low:.2f}-{high:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [AS_SERVER]:
        from app.cli import main as cli

        with cached_image_work():
            print("image work cached: done once per kind, then reused (ingest_overhead.py)")
            return cli(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--http-clients", type=int, default=4, help="0: no HTTP row")
    args = parser.parse_args(argv)
    frame = make_frames(1)[0]
    with tempfile.TemporaryDirectory(prefix="ingest-overhead-") as tmp, cached_image_work():
        rows = service_rows(archive_settings(Path(tmp, "a")), frame, args.uploads, args.rounds)
        asgi_settings = archive_settings(Path(tmp, "b"))
        rows["whole request, ASGI (no HTTP server)"] = asyncio.run(
            request_rounds(asgi_settings, frame, args.uploads, args.rounds)
        )
        rows["web stack alone: ASGI, the service call cached"] = asyncio.run(
            request_rounds(
                archive_settings(Path(tmp, "d")), frame, args.uploads, args.rounds, web_only=True
            )
        )
        if args.http_clients > 0:
            rows[f"whole request over HTTP (serve, {args.http_clients} clients)"] = http_rounds(
                Path(tmp, "c"), frame, args.uploads, args.rounds, args.http_clients
            )
    print(
        f"Ingest overhead: {PROFILE}, image work cached, {args.uploads} uploads x {args.rounds} "
        "rounds, SQLite; one thread, but over HTTP the server's threads\n"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
