"""Where restore jobs run: the `RestoreQueue` interface, and the bounded pool inside the server
(the embedded default). The Celery publisher is app/restorations/celery_queue.py; which one a
server uses is chosen where it is assembled (app/runtime.py). The API only ever hands over a
committed job id.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from app.errors import QueueUnavailable
from app.observability.logs import current_request_id, request_context

if TYPE_CHECKING:
    from app.leases import Leases

logger = logging.getLogger(__name__)


class RestoreQueue(Protocol):
    def submit(self, job_id: str) -> None:
        """Hand over committed job `job_id`; QueueUnavailable (503) if it cannot take it now."""

    def check(self) -> None:
        """Raise QueueUnavailable unless jobs can be queued (readiness)."""

    def start(self) -> None:
        """Begin taking jobs (the server calls it once, at start)."""

    def owns(self, job_id: str) -> bool | None:
        """Whether job `job_id` is in this queue's hands (waiting or running); None when the
        queue cannot tell (a broker holds the messages)."""

    def resume(self) -> int:
        """Queue again the jobs a stopped server left unfinished; returns how many."""

    def stop(self) -> None:
        """Stop taking jobs; what is still waiting stays recorded and is resumed later."""


@runtime_checkable
class NotifyingQueue(Protocol):
    """A queue that can tell a waiting request the moment a job ends (the in-process pool);
    a queue whose jobs run in other processes (Celery) cannot, and its waiters poll."""

    def watch(self, job_id: str, notify: Callable[[], None]) -> Callable[[], None] | None:
        """Call `notify()` once, from the worker thread, when job `job_id` ends (done or
        failed, its outcome recorded). Returns the function that cancels the watch, or None
        when the job is not in this queue's hands (it may have ended already): look now."""


class InProcessQueue:
    """A bounded queue drained by a few threads in this process.

    Full means 503 with Retry-After rather than an ever-growing backlog: a client told to come
    back later is better than one whose request silently waits behind thousands of frames.

    With `leases` (the server), every job it takes is claimed in the database first, so that
    the server's other processes leave it alone (app/leases.py): `resume` claims the jobs no
    live process holds, `beat` keeps this pool's jobs claimed, `stop` frees those not begun.
    """

    def __init__(
        self,
        run: Callable[[str], None],
        *,
        workers: int,
        max_pending: int,
        retry_after_s: int = 5,
        on_error: Callable[[str, BaseException], None] | None = None,
        unfinished: Callable[[], list[str]] | None = None,
        leases: Leases | None = None,
    ) -> None:
        self._run = run
        self._on_error = on_error
        self._unfinished = leases.claim if leases is not None else unfinished
        self.leases = leases
        self._jobs: queue.Queue[str | None] = queue.Queue(maxsize=max_pending)
        self._owned: set[str] = set()  # waiting or running here
        self._request_ids: dict[str, str | None] = {}  # the request that submitted each job
        self._watchers: dict[str, list[Callable[[], None]]] = {}  # told when each job ends
        self._owned_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"restore-{i}", daemon=True)
            for i in range(workers)
        ]
        self.retry_after_s = retry_after_s

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def resume(self) -> int:
        """Queue the jobs `unfinished()` names (those a stopped server left queued or running;
        with `leases`, those no live process holds, claimed), as many as fit; the rest are
        freed for the housekeeping sweep or the next start."""
        job_ids = self._unfinished() if self._unfinished is not None else []
        for count, job_id in enumerate(job_ids):
            try:
                self.submit(job_id)
            except QueueUnavailable:
                left = job_ids[count:]
                logger.warning("restore queue full; %d unfinished jobs wait", len(left))
                if self.leases is not None:
                    self.leases.release(left)
                return count
        return len(job_ids)

    def stop(self, timeout: float = 10.0) -> None:
        """Let running jobs finish; jobs still waiting stay queued in the database, freed for
        whichever process takes them first (the next start resumes them)."""
        waiting: list[str] = []
        while True:
            try:
                job_id = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job_id is not None:
                waiting.append(job_id)
        with self._owned_lock:
            self._owned.difference_update(waiting)
        if self.leases is not None and waiting:
            try:
                self.leases.release(waiting)
            except Exception:  # they go stale instead, and are taken over then
                logger.exception("could not free %d waiting restore jobs", len(waiting))
        for _ in self._threads:
            self._jobs.put(None, timeout=timeout)
        for thread in self._threads:
            thread.join(timeout)

    def owns(self, job_id: str) -> bool | None:
        with self._owned_lock:
            return job_id in self._owned

    def beat(self) -> None:
        """Renew the claim on the jobs waiting or running here (with `leases`)."""
        with self._owned_lock:
            held = list(self._owned)
        if self.leases is not None and held:
            self.leases.heartbeat(held)

    def watch(self, job_id: str, notify: Callable[[], None]) -> Callable[[], None] | None:
        with self._owned_lock:
            if job_id not in self._owned:
                return None
            self._watchers.setdefault(job_id, []).append(notify)

        def cancel() -> None:
            with self._owned_lock:
                watchers = self._watchers.get(job_id, [])
                if notify in watchers:
                    watchers.remove(notify)
                if not watchers:
                    self._watchers.pop(job_id, None)

        return cancel

    def submit(self, job_id: str) -> None:
        try:
            with self._owned_lock:
                self._jobs.put_nowait(job_id)
                self._owned.add(job_id)
                self._request_ids[job_id] = current_request_id()
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
            with self._owned_lock:
                request_id = self._request_ids.pop(job_id, None)
            try:
                with request_context(request_id):
                    self._run(job_id)
            except Exception as exc:
                with request_context(request_id):
                    self._failed(job_id, exc)
            finally:
                with self._owned_lock:
                    self._owned.discard(job_id)
                    watchers = self._watchers.pop(job_id, [])
                self._notify(job_id, watchers)

    @staticmethod
    def _notify(job_id: str, watchers: list[Callable[[], None]]) -> None:
        for notify in watchers:
            try:
                notify()
            except Exception:  # a waiter gone away (its event loop closed) must not stop us
                logger.exception("could not tell a waiting request that job %s ended", job_id)

    def _failed(self, job_id: str, exc: Exception) -> None:
        logger.exception("restore job %s failed", job_id, exc_info=exc)
        if self._on_error is not None:
            try:
                self._on_error(job_id, exc)
            except Exception:
                # Left queued in the database, in no one's hands: the housekeeping sweep of
                # unowned jobs resumes it (or fails it once it can).
                logger.exception("could not record the failure of restore job %s", job_id)


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
        if self._thread.ident is not None:  # started
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._task()
            except Exception:
                logger.exception("%s failed", self._thread.name)
