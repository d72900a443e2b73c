"""GET /metrics: this process's counters and histograms, and the archive's gauges from the
database. It needs a read-scope key like the rest of the API: Prometheus sends it as a bearer
token (`authorization: {credentials_file: ...}`) or in X-API-Key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.auth.schemas import Principal, Scope
from app.auth.service import authenticate
from app.db import unit_of_work
from app.deps import QueueDep, RestorerDep, SessionFactoryDep
from app.errors import Forbidden
from app.observability import metrics, repository

router = APIRouter(tags=["metrics"])


def metrics_key(
    session_factory: SessionFactoryDep,
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    presented = x_api_key
    if presented is None and authorization and authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
    with unit_of_work(session_factory) as session:
        principal = authenticate(presented, session=session)
    if not principal.allows(Scope.read):
        raise Forbidden(f"API key {principal.name!r} lacks the 'read' scope")
    return principal


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def get_metrics(
    principal: Annotated[Principal, Depends(metrics_key)],
    session_factory: SessionFactoryDep,
    restorer: RestorerDep,
    queue: QueueDep,
) -> Response:
    """Prometheus text format: ingest, restore jobs and frames by state, restore run time and
    queue wait, restore cache hits and misses, the model served, and the archive's bytes."""
    metrics.record_model(
        restorer.name, restorer.weights_sha256, restorer.degradation_id, restorer.engine
    )

    def read() -> metrics.ArchiveSnapshot:
        with session_factory() as session:
            frames, sizes = repository.archive_bytes(session)
            jobs = repository.jobs_by_state(session)
            job_frames = repository.job_frames_by_state(session)
        pending = getattr(queue, "pending", None)
        return metrics.ArchiveSnapshot(
            frames=frames,
            bytes=sizes,
            jobs=jobs,
            job_frames=job_frames,
            # one process's pool: not shown when the server runs several (`--workers`)
            queue_pending=pending
            if isinstance(pending, int) and not metrics.multiprocess()
            else None,
        )

    body = metrics.exposition(metrics.ArchiveCollector(read))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
