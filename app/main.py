"""The FastAPI application: `create_app(settings)` builds it; `cctv-archive serve` runs it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from app import __version__
from app.config import Settings, get_settings
from app.db import make_engine, make_session_factory
from app.deps import Runtime
from app.error_handlers import install_error_handlers
from app.frames.endpoints import router as frames_router
from app.frames.images import allow_pixels
from app.health import router as health_router
from app.middleware import BodyLimitMiddleware
from app.restorations.cache import sweep_expired_cache
from app.restorations.endpoints import router as restorations_router
from app.restorations.model import check_profile, load_restorer
from app.restorations.queue import InProcessQueue, Periodic, RestoreQueue, build_queue
from app.restorations.service import resume_unfinished_jobs
from app.stats.endpoints import router as stats_router
from app.stats.quality import measure_quality
from app.storage import BlobStore, build_store
from models import Profile, Restorer

logger = logging.getLogger(__name__)

# Audit-sample frames measured per housekeeping round when the server restores in-process.
QUALITY_FRAMES_PER_ROUND = 8

# Multipart framing (boundaries, part headers, the small form fields) around the file itself.
MULTIPART_OVERHEAD = 64 * 1024


def build_runtime(
    settings: Settings,
    *,
    restorer: Restorer | None = None,
    store: BlobStore | None = None,
    queue: RestoreQueue | None = None,
) -> Runtime:
    """Everything requests share: database, store, profile, model and restore queue."""
    profile = Profile.parse(settings.profile)
    restorer = restorer or load_restorer(settings)
    check_profile(restorer, profile.degradation_id)
    engine = make_engine(settings.database_url)
    session_factory = make_session_factory(engine=engine)
    store = store or build_store(settings)
    if queue is None:
        queue = build_queue(
            settings, session_factory=session_factory, store=store, restorer=restorer
        )
    return Runtime(settings, engine, session_factory, store, profile, restorer, queue)


def housekeeping(runtime: Runtime) -> None:
    """Delete expired restorations; in the embedded default, also measure a few audit-sample
    frames (with Celery workers, `cctv-archive measure` does it where the GPU is)."""
    removed = sweep_expired_cache(session_factory=runtime.session_factory, store=runtime.store)
    if removed:
        logger.info("restore cache: %d expired entries removed", removed)
    if isinstance(runtime.queue, InProcessQueue):
        measured = measure_quality(
            session_factory=runtime.session_factory,
            store=runtime.store,
            restorer=runtime.restorer,
            limit=QUALITY_FRAMES_PER_ROUND,
        )
        if measured:
            logger.info("quality: %d audit-sample frames measured", measured)


def create_app(
    settings: Settings | None = None,
    *,
    restorer: Restorer | None = None,
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
        sweeper = Periodic(
            partial(housekeeping, runtime),
            interval_s=settings.restore_cache_sweep_s,
            name="housekeeping",
        )
        sweeper.start()
        if isinstance(runtime.queue, InProcessQueue):
            resumed = resume_unfinished_jobs(
                queue=runtime.queue, session_factory=runtime.session_factory
            )
            if resumed:
                logger.info("resumed %d unfinished restore jobs", resumed)
        try:
            yield
        finally:
            sweeper.stop()
            if isinstance(runtime.queue, InProcessQueue) and queue is None:
                runtime.queue.stop()
            runtime.engine.dispose()

    app = FastAPI(
        title="cctv-archive",
        version=__version__,
        summary="CCTV frames stored at reduced resolution, restored on demand with EDSR.",
        lifespan=lifespan,
    )
    app.add_middleware(
        BodyLimitMiddleware, max_body_size=settings.max_upload_bytes + MULTIPART_OVERHEAD
    )
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(frames_router)
    app.include_router(restorations_router)
    app.include_router(stats_router)
    return app
