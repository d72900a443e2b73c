"""Admin commands: they work on the local configuration (CCTV_ variables), not over HTTP.

Each command is a `cmd_*` function and an `add_*` function that registers its parser; a new one
is added to ADMIN_COMMANDS. Commands that only read (keys list, verify) refuse a database that
is not at the latest migration instead of migrating it; `migrate` and `serve` migrate, and
`keys create/revoke` and `measure` do too. Only `migrate` and `serve` create an archive; the
others name the database they use (on stderr) and refuse one that does not exist.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.common import CommandError, day, table

if TYPE_CHECKING:
    from app.config import Settings
    from app.db import SessionFactory
    from models import Restorer


def redact(url: str) -> str:
    """`url` with its password hidden, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def load_model(settings: Settings) -> Restorer:
    from app.restorations.model import load_restorer

    try:
        return load_restorer(settings)
    except LookupError as exc:  # no shipped model for the profile: the message says what to do
        raise CommandError(f"cannot choose a model: {exc}") from exc
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(f"cannot load the model (CCTV_MODEL={settings.model!r}): {exc}") from exc


def _require_archive(url: str) -> None:
    """Refuse a database that holds no archive yet: an admin command run from the wrong folder
    must not quietly start a new, empty archive there (only migrate and serve create one)."""
    from sqlalchemy.engine import make_url

    from app import migrate
    from app.db import make_engine

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        exists = bool(parsed.database) and Path(parsed.database).is_file()
    else:
        engine = make_engine(url)
        try:
            with engine.connect() as connection:
                exists = migrate.current_revision(connection) is not None
        finally:
            engine.dispose()
    if not exists:
        raise CommandError(
            f"no archive at {redact(url)}: run `cctv-archive migrate` (or `serve`) to create "
            "one, or set CCTV_DATA_DIR / CCTV_DATABASE_URL to the existing archive"
        )


def session_factory(*, migrate_first: bool) -> SessionFactory:
    """Sessions on the configured database, which must exist (its name goes to stderr):
    migrated first, or checked to be at the latest migration (read-only commands never change
    the schema)."""
    from app import migrate
    from app.config import get_settings
    from app.db import make_engine, make_session_factory

    settings = get_settings()
    print(f"database: {redact(settings.database_url)}", file=sys.stderr)
    _require_archive(settings.database_url)
    if migrate_first:
        migrate.upgrade(settings.database_url)
        return make_session_factory(settings)
    engine = make_engine(settings.database_url)
    with engine.connect() as connection:
        current = migrate.current_revision(connection)
    if current != migrate.head_revision():
        engine.dispose()
        raise CommandError(
            f"{redact(settings.database_url)} is not at the latest migration "
            f"({current or 'empty'}); run `cctv-archive migrate` first"
        )
    return make_session_factory(engine=engine)


# -- migrate (serve: app/cli/serve.py) ---------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> int:
    from app import migrate
    from app.config import get_settings

    settings = get_settings()
    migrate.upgrade(settings.database_url)
    print(f"{redact(settings.database_url)}: at migration {migrate.head_revision()}")
    return 0


def add_migrate(sub: Any) -> None:
    sub.add_parser("migrate", help="bring the database to the latest schema").set_defaults(
        handler=cmd_migrate
    )


# -- keys -------------------------------------------------------------------------------------


def cmd_keys_create(args: argparse.Namespace) -> int:
    from app.auth.schemas import parse_scopes
    from app.auth.service import create_key
    from app.db import unit_of_work
    from app.errors import ArchiveError

    try:
        scopes = parse_scopes(args.scopes)
        with unit_of_work(session_factory(migrate_first=True)) as session:
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

    with session_factory(migrate_first=False)() as session:
        keys = list_keys(session=session)
        rows = [
            (k.name, k.prefix + "…", k.scopes, day(k.created_at), day(k.revoked_at) or "-")
            for k in keys
        ]
    table(["name", "key", "scopes", "created", "revoked"], rows)
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from app.auth.service import revoke_key
    from app.db import unit_of_work
    from app.errors import ArchiveError

    try:
        with unit_of_work(session_factory(migrate_first=True)) as session:
            revoke_key(args.name, session=session)
    except ArchiveError as exc:
        raise CommandError(exc.message) from exc
    print(f"revoked API key {args.name!r}")
    return 0


def add_keys(sub: Any) -> None:
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


# -- verify, measure --------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    from app.config import get_settings
    from app.storage import build_store
    from app.verify import verify

    report = verify(
        session_factory=session_factory(migrate_first=False),
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


def add_verify(sub: Any) -> None:
    verify = sub.add_parser("verify", help="find (and --repair) blobs and rows out of step")
    verify.add_argument("--repair", action="store_true")
    verify.add_argument(
        "--grace", type=float, default=3600.0, help="leave orphan blobs younger than this (s)"
    )
    verify.set_defaults(handler=cmd_verify)


def cmd_measure(args: argparse.Namespace) -> int:
    from app.config import get_settings
    from app.stats.quality import measure_quality
    from app.stats.service import quality_stats
    from app.storage import build_store

    settings = get_settings()
    factory = session_factory(migrate_first=True)
    store, restorer = build_store(settings), load_model(settings)
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
    table(["camera", "frames", "PSNR-Y EDSR", "PSNR-Y bicubic", "gain dB"], rows)
    return 0


def add_measure(sub: Any) -> None:
    measure = sub.add_parser(
        "measure", help="PSNR of the model and bicubic on the audit sample, per camera"
    )
    measure.add_argument("--limit", type=int, help="measure at most this many frames")
    measure.set_defaults(handler=cmd_measure)


# -- audit ------------------------------------------------------------------------------------


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from app.auth.audit import verify_audit_chain

    with session_factory(migrate_first=False)() as session:
        report = verify_audit_chain(session)
    for problem in report.problems:
        print(problem)
    verdict = "intact" if report.ok else f"BROKEN ({len(report.problems)} problems)"
    print(f"audit log: {report.rows} rows, chain {verdict}; head {report.head}")
    return 0 if report.ok else 1


def add_audit(sub: Any) -> None:
    audit = sub.add_parser("audit", help="check the audit log's hash chain")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    audit_sub.add_parser(
        "verify", help="find edited, removed or reordered rows (exit 1 if any)"
    ).set_defaults(handler=cmd_audit_verify)


# -- worker-check ------------------------------------------------------------------------------


def cmd_worker_check(args: argparse.Namespace) -> int:
    from app.config import get_settings
    from app.errors import QueueUnavailable
    from app.restorations.celery_queue import CeleryQueue

    settings = get_settings()
    if settings.restore_backend != "celery":
        raise CommandError(
            "worker-check needs CCTV_RESTORE_BACKEND=celery "
            f"(it is {settings.restore_backend!r}: restores run inside the server)"
        )
    if args.timeout <= 0:
        raise CommandError(f"--timeout must be positive, not {args.timeout:g}")
    try:
        queue = CeleryQueue.from_settings(settings)
        reply = queue.check_workers(args.timeout, worker=args.worker)
    except QueueUnavailable as exc:
        print(f"unhealthy: {exc.message}")
        return 1
    worker, model = reply.get("worker"), reply.get("model")
    print(f"healthy: restore worker {worker} ran a health task (model {model})")
    return 0


def add_worker_check(sub: Any) -> None:
    check = sub.add_parser(
        "worker-check",
        help="a restore worker's pool runs a health task within --timeout (exit 1 if not)",
    )
    check.add_argument("--timeout", type=float, default=30.0, help="seconds to wait (30)")
    check.add_argument(
        "--worker",
        metavar="NODE",
        help="ask this worker (its node name, e.g. celery@$HOSTNAME: a container's own "
        "healthcheck) instead of any worker on the queue",
    )
    check.set_defaults(handler=cmd_worker_check)


# The admin commands in the order `cctv-archive --help` lists them.
ADMIN_COMMANDS: list[Callable[[Any], None]] = [
    add_migrate,
    add_keys,
    add_verify,
    add_measure,
    add_audit,
    add_worker_check,
]
