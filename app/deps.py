"""Request dependencies as Annotated aliases, so route signatures read like sentences.

The ones that only hand over a part of the runtime are `async def`: FastAPI runs them inline,
where a plain `def` would cost each request a hop to the thread pool and back.

Routes take the narrow ones (`SessionDep`, `StoreDep`, `RestoreDep`, `QueueDep`...), never the
whole runtime. Authentication is its own short transaction, so a request that then waits (for a
restoration) holds no database connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Annotated

from anyio.to_thread import run_sync
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.auth.schemas import Principal, Scope
from app.config import Settings
from app.db import SessionFactory, unit_of_work
from app.errors import Forbidden
from app.middleware import AUTHENTICATED, lookup_key
from app.restorations.context import RestoreContext
from app.restorations.model import RestoreModel
from app.restorations.queue import RestoreQueue
from app.runtime import Runtime
from app.storage import BlobStore
from models import Profile


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def _session_factory(runtime: RuntimeDep) -> SessionFactory:
    return runtime.session_factory


SessionFactoryDep = Annotated[SessionFactory, Depends(_session_factory)]


def get_session(session_factory: SessionFactoryDep) -> Iterator[Session]:
    """The request's one unit of work: committed when the endpoint returns, before the response
    is sent (scope="function"), or rolled back if it raised."""
    with unit_of_work(session_factory) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def _settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


async def _store(runtime: RuntimeDep) -> BlobStore:
    return runtime.store


async def _profile(runtime: RuntimeDep) -> Profile:
    return runtime.profile


async def _restore(runtime: RuntimeDep) -> RestoreContext:
    return runtime.restore


async def _restorer(runtime: RuntimeDep) -> RestoreModel:
    return runtime.restorer


async def _queue(runtime: RuntimeDep) -> RestoreQueue:
    return runtime.queue


async def _engine(runtime: RuntimeDep) -> Engine:
    return runtime.engine


SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[BlobStore, Depends(_store)]
ProfileDep = Annotated[Profile, Depends(_profile)]
RestoreDep = Annotated[RestoreContext, Depends(_restore)]
RestorerDep = Annotated[RestoreModel, Depends(_restorer)]
QueueDep = Annotated[RestoreQueue, Depends(_queue)]
EngineDep = Annotated[Engine, Depends(_engine)]  # readiness only: everything else uses sessions

_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key from `cctv-archive keys create`"
)


APIKey = Annotated[str | None, Security(_api_key)]


async def caller(
    request: Request, session_factory: SessionFactory, api_key: str | None
) -> Principal:
    """The caller, with the client address the audit log records: the one the key-before-body
    middleware found for this very key, else looked up in a transaction of its own (the
    connection goes back at once)."""
    found = request.scope.get("state", {}).get(AUTHENTICATED)
    if found is not None and found[0] == api_key:
        principal = found[1]
    else:
        principal = await run_sync(lookup_key, session_factory, api_key)
    client = request.client.host if request.client else ""
    return replace(principal, client_address=client[:64])


def check_scope(principal: Principal, scope: Scope) -> Principal:
    if not principal.allows(scope):
        raise Forbidden(f"API key {principal.name!r} lacks the {scope.value!r} scope")
    return principal


async def current_key(
    request: Request, session_factory: SessionFactoryDep, api_key: APIKey
) -> Principal:
    return await caller(request, session_factory, api_key)


CurrentKey = Annotated[Principal, Depends(current_key)]


def require(scope: Scope) -> Callable[[Principal], Principal]:
    async def check(principal: CurrentKey) -> Principal:
        return check_scope(principal, scope)

    return check


IngestKey = Annotated[Principal, Depends(require(Scope.ingest))]
ReadKey = Annotated[Principal, Depends(require(Scope.read))]
AdminKey = Annotated[Principal, Depends(require(Scope.admin))]
