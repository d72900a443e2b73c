"""Liveness and readiness probes (the only endpoints without an API key)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app import migrate
from app.deps import EngineDep, QueueDep, RestorerDep, StoreDep
from app.errors import ArchiveError, error_body

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up and serving requests."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(
    engine: EngineDep, store: StoreDep, queue: QueueDep, restorer: RestorerDep
) -> JSONResponse:
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
        with engine.connect() as connection:
            if migrate.current_revision(connection) != migrate.head_revision():
                raise RuntimeError(
                    "schema is not at the latest migration (run cctv-archive migrate)"
                )

    run("database", database)
    run("storage", store.check)
    run("queue", queue.check)
    checks["model"] = f"{restorer.name} ({restorer.weights_sha256[:12]})"
    if problems:
        body = error_body("not_ready", "; ".join(problems))
        return JSONResponse(body | {"checks": checks}, status_code=503)
    return JSONResponse({"status": "ready", "checks": checks})
