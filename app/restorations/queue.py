"""Where restore jobs run: a bounded pool inside the server (embedded default) or Celery workers.

Both run `run_restore_job(job_id, ...)`; the API only ever hands over a committed job id.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from app.errors import QueueUnavailable

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from app.config import Settings
    from app.storage import BlobStore
    from models import Restorer

logger = logging.getLogger(__name__)


class RestoreQueue(Protocol):
    def submit(self, job_id: str) -> None:
        """Hand over committed job `job_id`; QueueUnavailable (503) if it cannot take it now."""

    def check(self) -> None:
        """Raise QueueUnavailable unless jobs can be queued (readiness)."""


class InProcessQueue:
    """A bounded queue drained by a few threads in this process.

    Full means 503 with Retry-After rather than an ever-growing backlog: a client told to come
    back later is better than one whose request silently waits behind thousands of frames.
    """

    def __init__(
        self,
        run: Callable[[str], None],
        *,
        workers: int,
        max_pending: int,
        retry_after_s: int = 5,
        on_error: Callable[[str, BaseException], None] | None = None,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self._run = run
        self._on_error = on_error
        self._on_stop = on_stop
        self._jobs: queue.Queue[str | None] = queue.Queue(maxsize=max_pending)
        self._threads = [
            threading.Thread(target=self._work, name=f"restore-{i}", daemon=True)
            for i in range(workers)
        ]
        self.retry_after_s = retry_after_s

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Let running jobs finish; jobs still waiting stay queued in the database and are
        resumed at the next start."""
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._jobs.put(None, timeout=timeout)
        for thread in self._threads:
            thread.join(timeout)
        if self._on_stop is not None:
            self._on_stop()

    def submit(self, job_id: str) -> None:
        try:
            self._jobs.put_nowait(job_id)
        except queue.Full:
            raise QueueUnavailable(
                f"the restore queue is full ({self._jobs.maxsize} jobs waiting); retry later",
                retry_after=self.retry_after_s,
            ) from None

    def check(self) -> None:
        if not any(thread.is_alive() for thread in self._threads):
            raise QueueUnavailable("no restore worker thread is running")

    @property
    def pending(self) -> int:
        return self._jobs.qsize()

    def _work(self) -> None:
        while True:
            job_id = self._jobs.get()
            if job_id is None:
                return
            try:
                self._run(job_id)
            except Exception as exc:
                logger.exception("restore job %s failed", job_id)
                if self._on_error is not None:
                    try:
                        self._on_error(job_id, exc)
                    except Exception:
                        logger.exception("could not record the failure of restore job %s", job_id)


class BatchingRestorer:
    """Wraps a Restorer so frames that wait at the same time go through the network together.

    Worker threads call `restore()` as they would on the model; one model thread takes whatever
    has queued up (up to `max_batch` frames) and runs it as one call, so several one-frame jobs
    arriving together cost one forward pass, and the model is only ever used from one thread.
    """

    def __init__(self, restorer: Restorer, *, max_batch: int, gather_s: float = 0.01) -> None:
        self.restorer = restorer
        self.max_batch = max_batch
        self.gather_s = gather_s
        self._requests: queue.Queue[tuple[list[np.ndarray], Future[list[np.ndarray]]] | None] = (
            queue.Queue()
        )
        self._thread = threading.Thread(target=self._loop, name="restore-model", daemon=True)
        self._thread.start()

    def __getattr__(self, name: str) -> Any:  # name, weights_sha256, scale, degradation_id...
        return getattr(self.restorer, name)

    def restore(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        future: Future[list[np.ndarray]] = Future()
        self._requests.put((frames, future))
        return future.result()

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join(5)

    def _loop(self) -> None:
        while True:
            first = self._requests.get()
            if first is None:
                return
            batch = [first]
            size = len(first[0])
            closing = False
            while size < self.max_batch:
                try:
                    more = self._requests.get(timeout=self.gather_s)
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                    break
                batch.append(more)
                size += len(more[0])
            self._run(batch)
            if closing:
                return

    def _run(self, batch: list[tuple[list[np.ndarray], Future[list[np.ndarray]]]]) -> None:
        frames = [frame for request, _ in batch for frame in request]
        try:
            outputs = self.restorer.restore(frames)
        except BaseException as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        start = 0
        for request, future in batch:
            future.set_result(outputs[start : start + len(request)])
            start += len(request)


def build_queue(
    settings: Settings,
    *,
    session_factory: sessionmaker[Session],
    store: BlobStore,
    restorer: Restorer,
) -> RestoreQueue:
    """ "inprocess": a started pool in this process; "celery": jobs go to Celery workers."""
    if settings.restore_backend == "celery":
        from worker.queue import CeleryQueue  # the embedded default never imports Celery

        return CeleryQueue.from_settings(settings)
    from app.restorations.service import fail_restore_job, run_restore_job

    batching = BatchingRestorer(restorer, max_batch=settings.restore_batch_size)

    def run(job_id: str) -> None:
        run_restore_job(
            job_id,
            session_factory=session_factory,
            store=store,
            restorer=batching,  # type: ignore[arg-type]
            settings=settings,
        )

    def on_error(job_id: str, exc: BaseException) -> None:
        fail_restore_job(job_id, f"{type(exc).__name__}: {exc}", session_factory=session_factory)

    pool = InProcessQueue(
        run,
        workers=settings.restore_workers,
        max_pending=settings.restore_queue_size,
        on_error=on_error,
        on_stop=batching.close,
    )
    pool.start()
    return pool


class Periodic:
    """Runs `task` every `interval_s` in a background thread (housekeeping: the restore-cache
    sweep, quality measurement); a failing run is logged and the next one still happens."""

    def __init__(self, task: Callable[[], object], *, interval_s: float, name: str) -> None:
        self._task = task
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._task()
            except Exception:
                logger.exception("%s failed", self._thread.name)
