"""Client commands: HTTP clients of a running service (--server, --api-key or CCTV_SERVER,
CCTV_API_KEY). They import nothing of the service itself but the bundle verifier (pure)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from app.cli.common import CommandError, mb, report_verdict, table, timestamp

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
DEFAULT_SERVER = "http://127.0.0.1:8000"


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


class NoCaptureTime(Exception):
    """A file whose capture time is unknown: no EXIF time and no --captured-at."""


def capture_time(path: Path, args: argparse.Namespace) -> tuple[datetime, str]:
    """When the frame was captured, and where that came from: the EXIF DateTimeOriginal (with
    its OffsetTimeOriginal, or --exif-offset), else --captured-at. Never the file's mtime: a
    copied file's mtime is the copy's."""
    taken, offset = _exif_time(path)
    if taken is not None:
        source = "EXIF DateTimeOriginal"
        if offset is None and args.exif_offset is not None:
            offset, source = args.exif_offset, f"{source}, --exif-offset"
        if offset is None:
            raise NoCaptureTime(
                "its EXIF DateTimeOriginal has no UTC offset: pass --exif-offset (e.g. +02:00)"
            )
        try:
            moment = datetime.strptime(f"{taken.strip()} {offset.strip()}", "%Y:%m:%d %H:%M:%S %z")
        except ValueError as exc:
            raise NoCaptureTime(f"unreadable EXIF time {taken!r} {offset!r}") from exc
        return moment.astimezone(UTC), source
    if args.captured_at is not None:
        return args.captured_at.astimezone(UTC), "--captured-at"
    raise NoCaptureTime("no EXIF capture time in the file: pass --captured-at")


def _exif_time(path: Path) -> tuple[str | None, str | None]:
    from PIL import ExifTags, Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            exif = image.getexif().get_ifd(ExifTags.IFD.Exif)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return None, None  # the server says what is wrong with the file
    taken = exif.get(ExifTags.Base.DateTimeOriginal)
    offset = exif.get(ExifTags.Base.OffsetTimeOriginal)
    return (str(taken) if taken else None), (str(offset) if offset else None)


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    files = list(image_files(args.paths))
    if not files:
        raise CommandError("no images found (.jpg, .jpeg, .png, .webp, .bmp)")
    new = repeated = failed = 0
    sent = stored = 0
    with _client(args) as client:
        for path in tqdm(files, unit="frame", desc=f"ingest {args.camera}"):
            try:
                captured, source = capture_time(path, args)
            except NoCaptureTime as exc:
                failed += 1
                tqdm.write(f"{path}: not sent: {exc}")
                continue
            tqdm.write(f"{path.name}: captured {captured.isoformat()} ({source})")
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
    print(f"uploaded {mb(sent)}, stored {mb(stored)}: saved {mb(saved)} ({ratio:.1%})")
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
    print(f"wrote {args.output} ({mb(len(response.content))}, {headers['content-type']})")
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
            mb(usage["bytes_uploaded"]),
            mb(usage["bytes_stored"]),
            mb(usage["bytes_cache"]),
            f"{usage['savings_ratio']:.1%}",
        )

    rows = [row(c["camera_id"], c) for c in stats["cameras"]]
    rows.append(row("all cameras", stats["totals"]))
    table(["camera", "frames", "uploaded", "stored", "restore cache", "saved"], rows)
    return 0


EXPORT_PARTS = ("stored", "original", "restored", "bicubic")


def cmd_export_create(args: argparse.Namespace) -> int:
    """Request an evidence export, wait for it, download it and verify it against the
    archive's published key: one command for what the README's curl steps do."""
    from app.lifecycle.bundle import verify_bundle  # pure: hashes and a signature, no archive

    if bool(args.frames) == bool(args.camera):
        raise CommandError("give --frames ID... or --camera (with --from/--to), not both")
    if args.frames and (args.start or args.end):
        raise CommandError("--from/--to select by capture time within --camera only")
    body: dict[str, Any] = {"include": args.include or ["stored", "original"]}
    if args.frames:
        body["frame_ids"] = args.frames
    else:
        body["camera_id"] = args.camera
        for name, value in (("from", args.start), ("to", args.end)):
            if value is not None:
                body[name] = value.isoformat()
    deadline = time.monotonic() + args.timeout
    with _client(args) as client:
        response = _request(lambda: client.post("/v1/exports", json=body), args.server)
        if response.status_code != 202:
            raise CommandError(_error(response))
        export = response.json()
        status_path = f"/v1/exports/{export['id']}"
        print(f"export {export['id']}: {export['frames']} frames", file=sys.stderr)
        while export["state"] in ("queued", "running"):
            if time.monotonic() > deadline:
                raise CommandError(
                    f"export {export['id']} not built within {args.timeout:.0f} s "
                    f"(still {export['state']}); download it later from "
                    f"/v1/exports/{export['id']}/download"
                )
            time.sleep(args.poll)
            response = _request(lambda: client.get(status_path), args.server)
            if response.status_code != 200:
                raise CommandError(_error(response))
            export = response.json()
        if export["state"] != "done":
            raise CommandError(f"export {export['id']} failed: {export.get('error')}")
        bundle = _request(lambda: client.get(f"{status_path}/download"), args.server)
        if bundle.status_code != 200:
            raise CommandError(_error(bundle))
        key = _request(lambda: client.get("/v1/signing-key"), args.server)
        if key.status_code != 200:
            raise CommandError(_error(key))
    public_pem = key.json()["public_key_pem"].encode()
    args.output.write_bytes(bundle.content)
    key_path = args.output.with_name(args.output.name + ".key.pem")
    key_path.write_bytes(public_pem)
    print(f"wrote {args.output} ({mb(len(bundle.content))}) and the archive's key {key_path}")
    return 0 if report_verdict(verify_bundle(bundle.content, public_key_pem=public_pem)) else 1


def add_server_args(parser: argparse.ArgumentParser) -> None:
    """Where a client command reaches the service, and with which key."""
    parser.add_argument("--server", default=os.environ.get("CCTV_SERVER", DEFAULT_SERVER))
    parser.add_argument("--api-key", help="default: $CCTV_API_KEY")


def add_export_create(export_sub: Any) -> None:
    """`export create`: a client command beside the offline `export verify`."""
    create = export_sub.add_parser(
        "create",
        help="request an evidence export, wait, download and verify it (a read key)",
    )
    add_server_args(create)
    create.add_argument("--frames", nargs="+", metavar="ID", help="these frames")
    create.add_argument("--camera", help="this camera's frames (with --from/--to)")
    create.add_argument("--from", dest="start", type=timestamp, help="capture time, inclusive")
    create.add_argument("--to", dest="end", type=timestamp, help="capture time, exclusive")
    create.add_argument(
        "--include",
        nargs="+",
        choices=EXPORT_PARTS,
        help="default: stored original (restored: the AI derivative; bicubic: interpolation)",
    )
    create.add_argument("-o", "--output", type=Path, required=True, help="the ZIP to write")
    create.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
    create.add_argument("--poll", type=float, default=0.5, help=argparse.SUPPRESS)
    create.set_defaults(handler=cmd_export_create)


def add_client_commands(sub: Any) -> None:
    def client(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help)
        add_server_args(p)
        return p

    ingest = client("ingest", "upload image files or folders of them")
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    ingest.add_argument("--camera", required=True)
    ingest.add_argument(
        "--captured-at",
        type=timestamp,
        help="capture time of the files without an EXIF DateTimeOriginal (ISO 8601 with offset)",
    )
    ingest.add_argument(
        "--exif-offset",
        help="UTC offset of EXIF times that carry none, e.g. +02:00 (the camera's clock)",
    )
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
