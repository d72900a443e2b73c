"""Liveness and readiness probes (the only endpoints without an API key)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app import migrate
from app.deps import RuntimeDep
from app.errors import ArchiveError, error_body

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up and serving requests."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Database (at the latest migration), blob store, restore queue and model all usable."""
    checks: dict[str, str] = {}
    problems: list[str] = []

    def run(name: str, check: Any) -> None:
        try:
            check()
            checks[name] = "ok"
        except (ArchiveError, sa.exc.SQLAlchemyError, OSError, RuntimeError) as exc:
            checks[name] = "unavailable"
            problems.append(f"{name}: {getattr(exc, 'message', None) or exc}")

    def database() -> None:
        with runtime.engine.connect() as connection:
            if migrate.current_revision(connection) != migrate.head_revision():
                raise RuntimeError(
                    "schema is not at the latest migration (run cctv-archive migrate)"
                )

    run("database", database)
    run("storage", runtime.store.check)
    run("queue", runtime.queue.check)
    checks["model"] = f"{runtime.restorer.name} ({runtime.restorer.weights_sha256[:12]})"
    if problems:
        body = error_body("not_ready", "; ".join(problems))
        return JSONResponse(body | {"checks": checks}, status_code=503)
    return JSONResponse({"status": "ready", "checks": checks})
