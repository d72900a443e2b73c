"""`cctv-archive`: run the service, manage keys, and talk to a running service.

serve, migrate, keys and verify work on the local configuration (CCTV_ variables); ingest,
restore and stats are HTTP clients of a running service (--server, --api-key or CCTV_SERVER,
CCTV_API_KEY). train, evaluate, sweep, models and pack belong to models/, worker to worker/.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from app import __version__

MODEL_COMMANDS = ("train", "evaluate", "sweep", "models", "pack")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
DEFAULT_SERVER = "http://127.0.0.1:8000"


class CommandError(Exception):
    """A failure to report in one line, without a traceback."""


# -- local commands -------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app import migrate
    from app.config import get_settings
    from app.main import create_app

    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    migrate.upgrade(settings.database_url)
    print(f"database: {_redact(settings.database_url)} (migrated)")
    print(f"blobs:    {settings.storage_url}")
    restorer = _load_model(settings)
    print(
        f"model:    {restorer.name} (weights {restorer.weights_sha256[:16]}) on {restorer.device}"
    )
    app = create_app(settings, restorer=restorer)
    print(f"cctv-archive {__version__} listening on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from app import migrate
    from app.config import get_settings

    settings = get_settings()
    migrate.upgrade(settings.database_url)
    print(f"{_redact(settings.database_url)}: at migration {migrate.head_revision()}")
    return 0


def _load_model(settings: Any) -> Any:
    from app.restorations.model import load_restorer

    try:
        return load_restorer(settings)
    except LookupError as exc:  # no shipped model for the profile: the message says what to do
        raise CommandError(f"cannot choose a model: {exc}") from exc
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(f"cannot load the model (CCTV_MODEL={settings.model!r}): {exc}") from exc


def _local_session_factory() -> Any:
    from app import migrate
    from app.config import get_settings
    from app.db import make_session_factory

    settings = get_settings()
    migrate.upgrade(settings.database_url)  # keys may be made before the first `serve`
    return make_session_factory(settings)


def cmd_keys_create(args: argparse.Namespace) -> int:
    from app.auth.schemas import parse_scopes
    from app.auth.service import create_key
    from app.db import unit_of_work
    from app.errors import ArchiveError

    try:
        scopes = parse_scopes(args.scopes)
        with unit_of_work(_local_session_factory()) as session:
            key, secret = create_key(args.name, scopes, session=session)
            name, granted = key.name, key.scopes
    except (ValueError, ArchiveError) as exc:
        raise CommandError(getattr(exc, "message", str(exc))) from exc
    print(
        f"created API key {name!r} with scopes {granted}; it is shown only this once:",
        file=sys.stderr,
    )
    print(secret)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from app.auth.service import list_keys
    from app.db import unit_of_work

    with unit_of_work(_local_session_factory()) as session:
        keys = list_keys(session=session)
        rows = [
            (k.name, k.prefix + "…", k.scopes, _day(k.created_at), _day(k.revoked_at) or "-")
            for k in keys
        ]
    _table(["name", "key", "scopes", "created", "revoked"], rows)
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from app.auth.service import revoke_key
    from app.db import unit_of_work
    from app.errors import ArchiveError

    try:
        with unit_of_work(_local_session_factory()) as session:
            revoke_key(args.name, session=session)
    except ArchiveError as exc:
        raise CommandError(exc.message) from exc
    print(f"revoked API key {args.name!r}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from app.config import get_settings
    from app.storage import build_store
    from app.verify import verify

    report = verify(
        session_factory=_local_session_factory(),
        store=build_store(get_settings()),
        repair=args.repair,
        grace_s=args.grace,
    )
    print(f"blobs without a row:        {len(report.orphan_blobs)}")
    print(f"frames missing their blob:  {len(report.frames_missing_blobs)}")
    print(f"cache rows missing a blob:  {len(report.cache_missing_blobs)}")
    for frame_id in report.frames_missing_blobs[:20]:
        print(f"  frame {frame_id}: stored blob missing (not recoverable)")
    if args.repair:
        print(f"repaired: {report.repaired}")
    return 0 if report.clean or args.repair else 1


def cmd_measure(args: argparse.Namespace) -> int:
    from app.config import get_settings
    from app.stats.quality import measure_quality
    from app.stats.service import quality_stats
    from app.storage import build_store

    settings = get_settings()
    factory = _local_session_factory()
    store, restorer = build_store(settings), _load_model(settings)
    total = 0
    while args.limit is None or total < args.limit:
        batch = settings.restore_batch_size
        if args.limit is not None:
            batch = min(batch, args.limit - total)
        measured = measure_quality(
            session_factory=factory, store=store, restorer=restorer, limit=batch
        )
        if not measured:
            break
        total += measured
    print(f"measured {total} audit-sample frames with {restorer.name}")
    with factory() as session:
        stats = quality_stats(session=session, restorer=restorer)

    def row(name: str, q: Any) -> tuple[str, ...]:
        if not q.frames_measured:
            return (name, "0", "-", "-", "-")
        return (
            name,
            str(q.frames_measured),
            f"{q.psnr_y_edsr:.2f}",
            f"{q.psnr_y_bicubic:.2f}",
            f"{q.gain_db:+.2f}",
        )

    rows = [row(c.camera_id, c) for c in stats.cameras] + [row("all cameras", stats.totals)]
    _table(["camera", "frames", "PSNR-Y EDSR", "PSNR-Y bicubic", "gain dB"], rows)
    return 0


# -- client commands ------------------------------------------------------------------------


def _client(args: argparse.Namespace, timeout: float = 60.0) -> httpx.Client:
    key = args.api_key or os.environ.get("CCTV_API_KEY")
    if not key:
        raise CommandError("no API key: pass --api-key or set CCTV_API_KEY")
    return httpx.Client(base_url=args.server, headers={"X-API-Key": key}, timeout=timeout)


def _error(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{response.status_code} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.text[:200]}"


def _request(call: Callable[[], httpx.Response], server: str) -> httpx.Response:
    try:
        return call()
    except httpx.TransportError as exc:
        raise CommandError(f"cannot reach {server}: {exc}") from exc


def image_files(paths: list[Path]) -> Iterator[Path]:
    """The files named, and the images (by suffix) in the folders named, in order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            yield path
        else:
            raise CommandError(f"no such file or folder: {path}")


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    files = list(image_files(args.paths))
    if not files:
        raise CommandError("no images found (.jpg, .jpeg, .png, .webp, .bmp)")
    new = repeated = failed = 0
    sent = stored = 0
    with _client(args) as client:
        for path in tqdm(files, unit="frame", desc=f"ingest {args.camera}"):
            captured = args.captured_at or datetime.fromtimestamp(path.stat().st_mtime, UTC)
            data = path.read_bytes()
            response = _request(
                lambda data=data, path=path, captured=captured: client.post(
                    "/v1/frames",
                    files={"file": (path.name, data, "application/octet-stream")},
                    data={
                        "camera_id": args.camera,
                        "captured_at": captured.isoformat(),
                        "tags": args.tag or [],
                    },
                ),
                args.server,
            )
            if response.status_code in (200, 201):
                frame = response.json()
                if response.status_code == 201:
                    new += 1
                    sent += frame["original"]["bytes"]
                    stored += frame["stored"]["bytes"]
                else:
                    repeated += 1
            else:
                failed += 1
                tqdm.write(f"{path}: {_error(response)}")
    saved = sent - stored
    ratio = saved / sent if sent else 0.0
    print(f"{new} frames archived, {repeated} already in the archive, {failed} failed")
    print(f"uploaded {_mb(sent)}, stored {_mb(stored)}: saved {_mb(saved)} ({ratio:.1%})")
    if failed:
        print("re-running the same command retries the failures; archived frames are skipped")
    return 1 if failed else 0


def cmd_restore(args: argparse.Namespace) -> int:
    fmt = args.format or {".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}.get(
        args.output.suffix.lower(), "png"
    )
    params = {"format": fmt, "method": args.method, "wait": str(args.wait)}
    path = f"/v1/frames/{args.frame_id}/restored"
    deadline = time.monotonic() + args.timeout
    with _client(args, timeout=args.wait + 60) as client:
        response = _request(lambda: client.get(path, params=params), args.server)
        while response.status_code == 202:
            job = response.json()
            if time.monotonic() > deadline:
                raise CommandError(f"not restored within {args.timeout:.0f} s; job {job['id']}")
            print(f"restoring (job {job['id']}, {job['state']})...", file=sys.stderr)
            response = _request(lambda: client.get(path, params=params), args.server)
    if response.status_code != 200:
        raise CommandError(_error(response))
    args.output.write_bytes(response.content)
    headers = response.headers
    print(f"wrote {args.output} ({_mb(len(response.content))}, {headers['content-type']})")
    print(
        f"method {headers.get('x-restoration-method')}, model "
        f"{headers.get('x-restoration-model')} ({headers.get('x-restoration-weights-sha256')})"
    )
    print(headers.get("x-derivative-notice", ""))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with _client(args) as client:
        response = _request(lambda: client.get("/v1/stats/storage"), args.server)
    if response.status_code != 200:
        raise CommandError(_error(response))
    stats = response.json()

    def row(name: str, usage: dict[str, Any]) -> tuple[str, ...]:
        return (
            name,
            str(usage["frames"]),
            _mb(usage["bytes_uploaded"]),
            _mb(usage["bytes_stored"]),
            _mb(usage["bytes_cache"]),
            f"{usage['savings_ratio']:.1%}",
        )

    rows = [row(c["camera_id"], c) for c in stats["cameras"]]
    rows.append(row("all cameras", stats["totals"]))
    _table(["camera", "frames", "uploaded", "stored", "restore cache", "saved"], rows)
    return 0


# -- helpers --------------------------------------------------------------------------------


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def _day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _table(header: list[str], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows, strict=False)]
    for values in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(values, widths, strict=True)).rstrip())


def _timestamp(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give a UTC offset, e.g. 2024-05-01T12:00:00Z")
    return moment


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cctv-archive", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"cctv-archive {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="migrate, load the model and run the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(handler=cmd_serve)

    sub.add_parser("migrate", help="bring the database to the latest schema").set_defaults(
        handler=cmd_migrate
    )

    keys = sub.add_parser("keys", help="API keys: create, list, revoke")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = keys_sub.add_parser("create", help="make a key (printed once)")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", required=True, help="comma-separated: ingest, read, admin")
    create.set_defaults(handler=cmd_keys_create)
    keys_sub.add_parser("list", help="list keys (never the keys themselves)").set_defaults(
        handler=cmd_keys_list
    )
    revoke = keys_sub.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    revoke.set_defaults(handler=cmd_keys_revoke)

    verify = sub.add_parser("verify", help="find (and --repair) blobs and rows out of step")
    verify.add_argument("--repair", action="store_true")
    verify.add_argument(
        "--grace", type=float, default=3600.0, help="leave orphan blobs younger than this (s)"
    )
    verify.set_defaults(handler=cmd_verify)

    measure = sub.add_parser(
        "measure", help="PSNR of the model and bicubic on the audit sample, per camera"
    )
    measure.add_argument("--limit", type=int, help="measure at most this many frames")
    measure.set_defaults(handler=cmd_measure)

    def client(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--server", default=os.environ.get("CCTV_SERVER", DEFAULT_SERVER))
        p.add_argument("--api-key", help="default: $CCTV_API_KEY")
        return p

    ingest = client("ingest", "upload image files or folders of them")
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    ingest.add_argument("--camera", required=True)
    ingest.add_argument("--captured-at", type=_timestamp, help="default: each file's mtime")
    ingest.add_argument("--tag", action="append", help="repeatable")
    ingest.set_defaults(handler=cmd_ingest)

    restore = client("restore", "fetch a restored frame into a file")
    restore.add_argument("frame_id")
    restore.add_argument("-o", "--output", type=Path, required=True)
    restore.add_argument("--method", choices=["edsr", "bicubic"], default="edsr")
    restore.add_argument("--format", choices=["png", "webp", "jpeg"], help="default: from -o")
    restore.add_argument("--wait", type=float, default=30.0, help="seconds per request")
    restore.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
    restore.set_defaults(handler=cmd_restore)

    client("stats", "storage savings per camera").set_defaults(handler=cmd_stats)

    for name in MODEL_COMMANDS:
        sub.add_parser(name, help=f"model {name} (see `cctv-archive {name} --help`)")
    sub.add_parser("worker", help="a Celery restore worker (scaled-out deployments)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in MODEL_COMMANDS:
        from models.cli import main as models_main

        return models_main(argv)
    if argv and argv[0] == "worker":
        from worker.celery_app import main as worker_main

        return worker_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except CommandError as exc:
        print(f"cctv-archive: {exc}", file=sys.stderr)
        return 1
