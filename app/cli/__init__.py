"""`cctv-archive`: run the service, manage keys, and talk to a running service.

Admin commands (serve, migrate, keys, verify, measure) work on the local configuration (CCTV_
variables); client commands (ingest, restore, stats) are HTTP clients of a running service
(--server, --api-key or CCTV_SERVER, CCTV_API_KEY). train, evaluate, sweep, models and pack
belong to models/; worker starts the Celery restore worker (worker/).
"""

from __future__ import annotations

import argparse
import os
import sys

from pydantic import ValidationError

from app import __version__
from app.cli.admin import ADMIN_COMMANDS
from app.cli.client import add_client_commands
from app.cli.common import CommandError
from app.cli.lifecycle import LIFECYCLE_COMMANDS
from app.cli.serve import add_serve

__all__ = ["MODEL_COMMANDS", "CommandError", "build_parser", "main"]

MODEL_COMMANDS = ("train", "evaluate", "sweep", "models", "pack", "raw-weights")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cctv-archive", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"cctv-archive {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in [add_serve, *ADMIN_COMMANDS, *LIFECYCLE_COMMANDS]:
        add(sub)
    add_client_commands(sub)
    for name in MODEL_COMMANDS:
        sub.add_parser(name, help=f"model {name} (see `cctv-archive {name} --help`)")
    sub.add_parser("worker", help="a Celery restore worker (scaled-out deployments)")
    return parser


def run_worker(argv: list[str]) -> int:
    """`cctv-archive worker ARGS...` becomes `python -m worker ARGS...`: the worker is its own
    program on top of app/, which never imports it."""
    os.execv(sys.executable, [sys.executable, "-m", "worker", *argv])
    return 1  # not reached: execv replaces this process


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        build_parser().print_help()
        return 0
    if argv[0] in MODEL_COMMANDS:
        from models.cli import main as models_main

        return models_main(argv)
    if argv[0] == "worker":
        return run_worker(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except CommandError as exc:
        print(f"cctv-archive: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:  # a CCTV_ variable the settings refuse
        print(f"cctv-archive: {settings_problem(exc)}", file=sys.stderr)
        return 1


def settings_problem(exc: ValidationError) -> str:
    """The refused CCTV_ variables and why, in one line."""
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error.get("loc", ()))
        name = f"CCTV_{field.upper()}" if field else "the CCTV_ settings"
        parts.append(f"{name}: {str(error.get('msg', 'invalid')).removeprefix('Value error, ')}")
    return "; ".join(parts)[:300]
