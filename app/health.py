"""Liveness and readiness probes (the only endpoints without an API key)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app import migrate
from app.deps import EngineDep, QueueDep, RestorerDep, SettingsDep, StoreDep
from app.errors import ArchiveError, StorageUnavailable, error_body

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up and serving requests."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(
    engine: EngineDep,
    store: StoreDep,
    queue: QueueDep,
    restorer: RestorerDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Database (at the latest migration), blob store (a small write succeeds, free space over
    `min_free_bytes`), restore queue and model all usable."""
    checks: dict[str, Any] = {}
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

    def storage() -> None:
        store.check()
        free = store.free_bytes()
        if free is None:
            return
        checks["storage_free_bytes"] = free
        if free < settings.min_free_bytes:
            raise StorageUnavailable(
                f"{free} bytes free for blobs, under CCTV_MIN_FREE_BYTES={settings.min_free_bytes}"
            )

    run("storage", storage)
    run("queue", queue.check)
    checks["model"] = f"{restorer.name} ({restorer.weights_sha256[:12]}, {restorer.engine})"
    if problems:
        body = error_body("not_ready", "; ".join(problems))
        return JSONResponse(body | {"checks": checks}, status_code=503)
    return JSONResponse({"status": "ready", "checks": checks})
