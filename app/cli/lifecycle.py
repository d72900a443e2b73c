"""Lifecycle commands: camera policies, legal holds, a retention pass now (`purge`), and
verifying an evidence bundle offline (`export verify`, which needs no archive at all)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.cli.admin import session_factory
from app.cli.common import CommandError, counted, day, mb, report_verdict, table

PURGE_ACTOR = "system:purge"


def _factory(*, migrate_first: bool) -> Any:
    return session_factory(migrate_first=migrate_first)


# -- cameras ----------------------------------------------------------------------------------


def _size(n: int | None) -> str:
    return "-" if n is None else mb(n)


def cmd_cameras_list(args: argparse.Namespace) -> int:
    from app.config import get_settings
    from app.lifecycle.service import list_cameras

    with _factory(migrate_first=False)() as session:
        cameras = list_cameras(session=session, settings=get_settings())
    rows = [
        (
            c.camera_id,
            str(c.usage.frames),
            str(c.policy.retention_days or "forever"),
            _size(c.policy.quota_bytes),
            str(c.policy.originals_hours),
            mb(c.usage.bytes_kept),
            mb(c.usage.bytes_originals),
            _size(c.projected_bytes) if c.projected_bytes is not None else "unbounded",
            day(c.usage.oldest_captured_at),
        )
        for c in cameras
    ]
    header = [
        "camera",
        "frames",
        "retention days",
        "quota",
        "originals h",
        "kept",
        "originals",
        "settles at",
        "oldest",
    ]
    table(header, rows)
    return 0


def cmd_cameras_policy(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from app.auth.schemas import Principal, Scope
    from app.db import unit_of_work
    from app.lifecycle.schemas import PolicyUpdate
    from app.lifecycle.service import set_policy

    try:
        update = PolicyUpdate(
            retention_days=args.retention_days,
            quota_bytes=args.quota_bytes,
            originals_hours=args.originals_hours,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        raise CommandError(f"--{error['loc'][0]}: {error['msg']}".replace("_", "-")) from exc
    principal = Principal(key_id=0, name="cli:admin", scopes=frozenset({Scope.admin}))
    with unit_of_work(_factory(migrate_first=True)) as session:
        policy = set_policy(args.camera_id, update, session=session, principal=principal)
    print(
        f"camera {policy.camera_id}: retention_days={policy.retention_days} "
        f"quota_bytes={policy.quota_bytes} originals_hours={policy.originals_hours} "
        "(None: the archive's default)"
    )
    return 0


def add_cameras(sub: Any) -> None:
    cameras = sub.add_parser("cameras", help="cameras: list them with policy and usage, set one")
    cameras_sub = cameras.add_subparsers(dest="cameras_command", required=True, metavar="ACTION")
    cameras_sub.add_parser(
        "list", help="policy in force, usage and projected storage per camera"
    ).set_defaults(handler=cmd_cameras_list)
    policy = cameras_sub.add_parser(
        "policy", help="set a camera's overrides (an option left out follows the default)"
    )
    policy.add_argument("camera_id")
    policy.add_argument("--retention-days", type=int, help="0: keep forever")
    policy.add_argument("--quota-bytes", type=int, help="the camera's storage ceiling")
    policy.add_argument("--originals-hours", type=int, help="0: keep no originals")
    policy.set_defaults(handler=cmd_cameras_policy)


# -- holds ------------------------------------------------------------------------------------

CLI_ADMIN = "cli:admin"


def _admin() -> Any:
    from app.auth.schemas import Principal, Scope

    return Principal(key_id=0, name=CLI_ADMIN, scopes=frozenset({Scope.admin}))


def _hold_rows(holds: list[Any]) -> list[tuple[str, ...]]:
    rows = []
    for h in holds:
        what = f"{len(h.frame_ids)} frames" if h.frame_ids is not None else f"camera {h.camera_id}"
        span = "" if h.frame_ids is not None else f"{day(h.start) or '…'} – {day(h.end) or '…'}"
        state = "active" if h.active else f"released {day(h.released_at)}"
        rows.append((h.id, h.case_reference, what, span, str(h.frames_held), state))
    return rows


def cmd_holds_list(args: argparse.Namespace) -> int:
    from app.lifecycle.holds import list_holds

    with _factory(migrate_first=False)() as session:
        holds = list_holds(session=session, active_only=not args.all)
    table(["hold", "case", "covers", "captured", "frames", "state"], _hold_rows(holds))
    return 0


def cmd_holds_create(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from app.db import unit_of_work
    from app.errors import ArchiveError
    from app.lifecycle.holds import place_hold
    from app.lifecycle.schemas import HoldCreate

    try:
        request = HoldCreate.model_validate(
            {
                "frame_ids": args.frames,
                "camera_id": args.camera,
                "from": args.start,
                "to": args.end,
                "case_reference": args.case,
                "reason": args.reason,
            }
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "the hold"
        raise CommandError(f"{where}: {error['msg'].removeprefix('Value error, ')}") from exc
    try:
        with unit_of_work(_factory(migrate_first=True)) as session:
            hold = place_hold(request, session=session, principal=_admin())
    except ArchiveError as exc:
        raise CommandError(exc.message) from exc
    print(f"placed legal hold {hold.id} ({hold.frames_held} frames held now)")
    return 0


def cmd_holds_release(args: argparse.Namespace) -> int:
    from app.db import unit_of_work
    from app.errors import ArchiveError
    from app.lifecycle.holds import release_hold

    try:
        with unit_of_work(_factory(migrate_first=True)) as session:
            hold = release_hold(args.hold_id, args.reason, session=session, principal=_admin())
    except ArchiveError as exc:
        raise CommandError(exc.message) from exc
    print(f"released legal hold {hold.id} (case {hold.case_reference})")
    return 0


def add_holds(sub: Any) -> None:
    from app.cli.common import timestamp

    holds = sub.add_parser("holds", help="legal holds: list, create, release (audit-logged)")
    holds_sub = holds.add_subparsers(dest="holds_command", required=True, metavar="ACTION")
    listing = holds_sub.add_parser("list", help="active holds (--all: released ones too)")
    listing.add_argument("--all", action="store_true")
    listing.set_defaults(handler=cmd_holds_list)
    create = holds_sub.add_parser(
        "create", help="hold frames (--frames) or a camera's range (--camera, --from, --to)"
    )
    create.add_argument("--frames", nargs="+", metavar="FRAME_ID")
    create.add_argument("--camera")
    create.add_argument("--from", dest="start", type=timestamp, help="capture time, inclusive")
    create.add_argument("--to", dest="end", type=timestamp, help="capture time, exclusive")
    create.add_argument("--case", required=True, help="the case reference")
    create.add_argument("--reason", required=True)
    create.set_defaults(handler=cmd_holds_create)
    release = holds_sub.add_parser("release", help="release a hold, with the reason")
    release.add_argument("hold_id")
    release.add_argument("--reason", required=True)
    release.set_defaults(handler=cmd_holds_release)


# -- purge ------------------------------------------------------------------------------------


def cmd_purge(args: argparse.Namespace) -> int:
    from app.config import get_settings
    from app.lifecycle.retention import sweep
    from app.storage import build_store

    settings = get_settings()
    factory = _factory(migrate_first=not args.dry_run)
    report = sweep(
        session_factory=factory,
        store=build_store(settings),
        settings=settings,
        dry_run=args.dry_run,
        actor=PURGE_ACTOR,
    )
    rows = [
        (g.frame_id, g.camera_id, g.captured_at.isoformat(), "frame", str(g.bytes), g.why)
        for g in report.frames
    ] + [
        (g.frame_id, g.camera_id, g.captured_at.isoformat(), "original", str(g.bytes), g.why)
        for g in report.originals
    ]
    if rows:
        table(["frame", "camera", "captured", "what", "bytes", "why"], rows)
    if report.exports:
        table(
            ["export", "frames", "finished", "what", "bytes", "why"],
            [
                (
                    g.export_id,
                    str(g.frames),
                    g.finished_at.isoformat(),
                    "bundle",
                    str(g.bytes),
                    g.why,
                )
                for g in report.exports
            ],
        )
    verb = "would delete" if args.dry_run else "deleted"
    print(
        f"{verb} {counted(len(report.frames), 'frame')}, "
        f"{counted(len(report.originals), 'original')} and "
        f"{counted(len(report.exports), 'export bundle')} ({mb(report.bytes_freed)}); held frames "
        "are never deleted",
        file=sys.stderr,
    )
    return 0


def add_purge(sub: Any) -> None:
    purge = sub.add_parser(
        "purge",
        help="run one retention pass now and list what goes (held frames stay; export bundles "
        "past CCTV_EXPORT_TTL_DAYS go too)",
    )
    purge.add_argument("--dry-run", action="store_true", help="list only; delete nothing")
    purge.set_defaults(handler=cmd_purge)


# -- export verify ----------------------------------------------------------------------------


def cmd_export_verify(args: argparse.Namespace) -> int:
    from app.lifecycle.bundle import verify_bundle

    try:
        data = Path(args.bundle).read_bytes()
        key = Path(args.public_key).read_bytes() if args.public_key else None
    except OSError as exc:
        raise CommandError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    try:
        verdict = verify_bundle(data, public_key_pem=key)
    except ValueError as exc:
        raise CommandError(f"--public-key {args.public_key}: not an Ed25519 public key") from exc
    if report_verdict(verdict):
        if key is None:
            print(
                "compare this fingerprint with the archive's (GET /v1/signing-key), or pass "
                "--public-key: the bundle's own key proves it unchanged, not who signed it"
            )
        return 0
    return 1


def add_export(sub: Any) -> None:
    from app.cli.client import add_export_create

    export = sub.add_parser(
        "export", help="evidence bundles: create one over the API, verify one offline"
    )
    export_sub = export.add_subparsers(dest="export_command", required=True, metavar="ACTION")
    add_export_create(export_sub)
    verify = export_sub.add_parser(
        "verify", help="check every file's SHA-256 and the manifest's signature (exit 1 if not)"
    )
    verify.add_argument("bundle", help="the ZIP from GET /v1/exports/{id}/download")
    verify.add_argument(
        "--public-key", help="the archive's public key (PEM, from GET /v1/signing-key)"
    )
    verify.set_defaults(handler=cmd_export_verify)


LIFECYCLE_COMMANDS = [add_cameras, add_holds, add_purge, add_export]
