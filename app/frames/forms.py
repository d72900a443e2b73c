"""The upload route's preconditions, in one dependency.

FastAPI solves every dependency of a route anew for each request. The upload route is the hottest
one (every camera, every frame), so the key, its scope and the multipart rules are checked by one
dependency here instead of the five that `IngestKey` and a separate form check chain, with the
same answers in the same order: 401, then 403, then 422.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.auth.schemas import Principal, Scope
from app.deps import APIKey, caller, check_scope
from app.errors import InvalidInput
from app.runtime import Runtime

SINGLE_FIELDS = ("file", "camera_id", "captured_at")


async def uploader(request: Request, api_key: APIKey) -> Principal:
    """The caller, who must hold the ingest scope; and an upload that repeats a field which takes
    one value is refused (FastAPI would keep the last one).

    The key is checked before anything is said about the body; FastAPI has parsed the form by the
    time this runs, so reading it again costs nothing."""
    runtime: Runtime = request.app.state.runtime
    principal = check_scope(await caller(request, runtime.session_factory, api_key), Scope.ingest)
    form = await request.form()
    for name in SINGLE_FIELDS:
        count = len(form.getlist(name))
        if count > 1:
            raise InvalidInput(f"{name}: sent {count} times; send it exactly once")
    return principal


Uploader = Annotated[Principal, Depends(uploader)]
