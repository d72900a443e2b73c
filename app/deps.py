"""Request dependencies as Annotated aliases, so route signatures read like sentences."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.auth.schemas import Principal, Scope
from app.auth.service import authenticate
from app.config import Settings
from app.db import unit_of_work
from app.errors import Forbidden
from app.restorations.queue import RestoreQueue
from app.storage import BlobStore
from models import Profile, Restorer


@dataclass
class Runtime:
    """What the app builds once at start and every request shares."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    store: BlobStore
    profile: Profile
    restorer: Restorer
    queue: RestoreQueue


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """The request's one unit of work: committed when the endpoint returns, before the response
    is sent (scope="function"), or rolled back if it raised."""
    with unit_of_work(runtime.session_factory) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


def _store(runtime: RuntimeDep) -> BlobStore:
    return runtime.store


SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[BlobStore, Depends(_store)]

_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key from `cctv-archive keys create`"
)


def current_key(
    session: SessionDep, api_key: Annotated[str | None, Security(_api_key)]
) -> Principal:
    return authenticate(api_key, session=session)


CurrentKey = Annotated[Principal, Depends(current_key, scope="function")]


def require(scope: Scope) -> Callable[[Principal], Principal]:
    def check(principal: CurrentKey) -> Principal:
        if not principal.allows(scope):
            raise Forbidden(f"API key {principal.name!r} lacks the {scope.value!r} scope")
        return principal

    return check


IngestKey = Annotated[Principal, Depends(require(Scope.ingest), scope="function")]
ReadKey = Annotated[Principal, Depends(require(Scope.read), scope="function")]
