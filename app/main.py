"""The FastAPI application: `create_app(settings)` builds it; `cctv-archive serve` runs it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app import __version__
from app.config import Settings, get_settings
from app.error_handlers import install_error_handlers
from app.frames.endpoints import router as frames_router
from app.frames.images import allow_pixels
from app.health import router as health_router
from app.lifecycle.endpoints import router as lifecycle_router
from app.middleware import BodyLimitMiddleware, KeyBeforeBodyMiddleware
from app.observability.endpoints import router as metrics_router
from app.observability.middleware import IngestMetricsMiddleware, RequestContextMiddleware
from app.restorations.endpoints import router as restorations_router
from app.restorations.model import RestoreModel
from app.restorations.queue import Periodic, RestoreQueue
from app.runtime import build_runtime, housekeeping
from app.stats.endpoints import router as stats_router
from app.storage import BlobStore
from app.web.pages import install_pages

logger = logging.getLogger(__name__)

# Multipart framing (boundaries, part headers, the small form fields) around the file itself.
MULTIPART_OVERHEAD = 64 * 1024


def ingest_threads(settings: Settings) -> anyio.CapacityLimiter:
    """How many uploads may be in worker threads at once: one more than the decode slots, so
    that one upload's blob writes and SQL overlap the others' image work. The rest wait on the
    event loop, holding no thread: more threads would only contend for the GIL, and raise the
    server's CPU per upload."""
    return anyio.CapacityLimiter(settings.max_concurrent_decodes + 1)


def create_app(
    settings: Settings | None = None,
    *,
    restorer: RestoreModel | None = None,
    store: BlobStore | None = None,
    queue: RestoreQueue | None = None,
) -> FastAPI:
    """The API. `restorer`, `store` and `queue` replace what the settings would build (tests
    pass a tiny model). The schema must already be migrated (`serve` does it)."""
    settings = settings or get_settings()
    allow_pixels(settings.max_pixels)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings, restorer=restorer, store=store, queue=queue)
        app.state.runtime = runtime
        app.state.ingest_threads = ingest_threads(settings)
        sweeper = Periodic(
            partial(housekeeping, runtime),
            interval_s=settings.restore_cache_sweep_s,
            name="housekeeping",
        )
        sweeper.start()
        resumed = runtime.start()
        if resumed:
            logger.info("resumed %d unfinished restore jobs", resumed)
        try:
            yield
        finally:
            sweeper.stop()
            runtime.close()

    # /docs and /redoc with their scripts and styles served from the package, not a CDN: the
    # archive often runs on a network without internet.
    app = FastAPIOffline(
        title="cctv-archive",
        version=__version__,
        summary="CCTV frames stored at reduced resolution, restored on demand with EDSR.",
        lifespan=lifespan,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_size=settings.max_upload_bytes + MULTIPART_OVERHEAD,
        timeout_s=settings.body_timeout_s,
    )
    app.add_middleware(KeyBeforeBodyMiddleware)  # before the body is touched
    # Outside it, neither touching the body: counting ingest answers (401s and 413s included),
    # and the request id with one access line per request.
    app.add_middleware(IngestMetricsMiddleware)
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(frames_router)
    app.include_router(restorations_router)
    app.include_router(stats_router)
    app.include_router(metrics_router)
    install_pages(app, settings)  # /login, /dashboard, /frames (issue 14)
    app.include_router(lifecycle_router)
    return app
