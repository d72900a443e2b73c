"""What the server builds once at start and every request shares, assembled from the settings:
this is where the restore queue's implementation is chosen."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from sqlalchemy import Engine

from app.config import Settings
from app.db import SessionFactory, make_engine, make_session_factory
from app.leases import Leases, process_owner
from app.lifecycle.credentials import ContentCredentials
from app.lifecycle.exports import STALE_EXPORT_S, ExportRunner
from app.lifecycle.models import EvidenceExport
from app.lifecycle.retention import sweep as sweep_retention
from app.lifecycle.signing import Signer
from app.restorations.batching import BatchingRestorer
from app.restorations.cache import sweep_expired_cache
from app.restorations.context import RestoreContext
from app.restorations.jobs import sweep_unowned_jobs
from app.restorations.model import RestoreModel, check_profile, load_restorer
from app.restorations.models import RestoreJob
from app.restorations.queue import InProcessQueue, Periodic, RestoreQueue
from app.restorations.task import fail_restore_job, run_restore_job
from app.stats.quality import measure_quality
from app.storage import BlobStore, build_store
from models import Profile

logger = logging.getLogger(__name__)

# Audit-sample frames measured per housekeeping round when the server restores in-process.
QUALITY_FRAMES_PER_ROUND = 8


@dataclass
class Runtime:
    """Database engine, ingest profile, the restore bundle and the restore queue."""

    settings: Settings
    engine: Engine
    profile: Profile
    restore: RestoreContext
    queue: RestoreQueue
    model: BatchingRestorer
    exports: ExportRunner
    owns_queue: bool = True

    def __post_init__(self) -> None:
        # Well inside the stale limits, so that no claim lapses while its holder lives.
        interval = min(self.settings.restore_stale_job_s, STALE_EXPORT_S) / 4
        self._heartbeat = Periodic(self.beat, interval_s=interval, name="heartbeat")

    @property
    def session_factory(self) -> SessionFactory:
        return self.restore.session_factory

    @property
    def store(self) -> BlobStore:
        return self.restore.store

    @property
    def restorer(self) -> RestoreModel:
        return self.restore.restorer

    def start(self) -> int:
        """Start the queue if this runtime built it, and resume unfinished jobs; returns how
        many were resumed."""
        if self.owns_queue:
            self.queue.start()
        self.exports.resume()
        self._heartbeat.start()
        return self.queue.resume()

    def beat(self) -> None:
        """Renew this process's claims on the jobs and exports it holds (app/leases.py)."""
        beat = getattr(self.queue, "beat", None)
        if beat is not None:
            beat()
        self.exports.beat()

    def close(self) -> None:
        self._heartbeat.stop()
        self.exports.stop()
        if self.owns_queue:
            self.queue.stop()
        self.model.close()
        self.engine.dispose()


def build_queue(context: RestoreContext, owner: str) -> RestoreQueue:
    """ "inprocess": a pool of threads in this process, its jobs claimed as `owner`; "celery":
    jobs go to Celery workers."""
    settings = context.settings
    if settings.restore_backend == "celery":
        # Imported only when configured: the embedded default never loads Celery.
        from app.restorations.celery_queue import CeleryQueue

        return CeleryQueue.from_settings(settings)

    def on_error(job_id: str, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        fail_restore_job(job_id, reason, session_factory=context.session_factory)

    return InProcessQueue(
        partial(run_restore_job, context=context),
        workers=settings.restore_workers,
        max_pending=settings.restore_queue_size,
        on_error=on_error,
        leases=Leases(
            RestoreJob, context.session_factory, owner, stale_s=settings.restore_stale_job_s
        ),
    )


def build_runtime(
    settings: Settings,
    *,
    restorer: RestoreModel | None = None,
    store: BlobStore | None = None,
    queue: RestoreQueue | None = None,
) -> Runtime:
    """Everything requests share; `restorer`, `store` and `queue` replace what the settings
    would build. The model gets one owner (a BatchingRestorer) that every restore goes through."""
    profile = Profile.parse(settings.profile)
    restorer = restorer or load_restorer(settings)
    check_profile(restorer, profile.degradation_id)
    engine = make_engine(settings.database_url)
    model = BatchingRestorer(restorer, max_batch=settings.restore_batch_size)
    context = RestoreContext(
        session_factory=make_session_factory(engine=engine),
        store=store or build_store(settings),
        restorer=model,
        settings=settings,
    )
    assert settings.signing_key_path is not None  # the settings fill it in
    owner = process_owner()  # this runtime, as the holder of the jobs it runs
    return Runtime(
        settings=settings,
        engine=engine,
        profile=profile,
        restore=context,
        queue=queue or build_queue(context, owner),
        model=model,
        exports=ExportRunner(
            context,
            Signer.load_or_create(settings.signing_key_path),
            Leases(EvidenceExport, context.session_factory, owner, stale_s=STALE_EXPORT_S),
            ContentCredentials.load_or_create(
                settings.signing_key_path.parent / "c2pa-credentials.pem"
            ),
        ),
        owns_queue=queue is None,
    )


def housekeeping(runtime: Runtime) -> None:
    """Delete expired restorations, apply retention (frames past retention or quota, originals
    past their window); in the embedded default, also measure a few audit-sample frames (with
    Celery workers, `cctv-archive measure` does it where the GPU is)."""
    resumed = sweep_unowned_jobs(context=runtime.restore, queue=runtime.queue)
    if resumed:
        logger.info("restore jobs: %d that no worker held queued again", resumed)
    removed = sweep_expired_cache(session_factory=runtime.session_factory, store=runtime.store)
    if removed:
        logger.info("restore cache: %d expired entries removed", removed)
    runtime.exports.resume()
    # Every replica sweeps, scaled out too (passes serialise on a database lock and find nothing
    # left to do after the first), so deletions the law requires never wait on a beat process;
    # the workers' periodic task (worker/tasks.py) makes the same pass.
    sweep_retention(
        session_factory=runtime.session_factory, store=runtime.store, settings=runtime.settings
    )
    if runtime.settings.restore_backend == "inprocess":
        measured = measure_quality(
            session_factory=runtime.session_factory,
            store=runtime.store,
            restorer=runtime.restorer,
            limit=QUALITY_FRAMES_PER_ROUND,
        )
        if measured:
            logger.info("quality: %d audit-sample frames measured", measured)
