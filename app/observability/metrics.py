"""Prometheus metrics. Counters and histograms live in this process's REGISTRY (ingest by the
API, restores by whichever process runs them: the API's pool or a Celery pool process); what the
database knows (frames, bytes, jobs by state) is read at scrape time by the API's /metrics, so
every replica reports the same archive-wide figures. With `serve --workers N` the server's
processes share their counters and histograms through files (prometheus_client's multiprocess
mode), so a scrape, whichever process answers it, counts them all.

No web framework here: the Celery worker imports this module too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

FRAMES_INGESTED = Counter("cctv_frames_ingested", "Frames archived (201)", registry=REGISTRY)
FRAMES_REPEATED = Counter(
    "cctv_frames_repeated",
    "Uploads of a frame archived before (200, nothing stored)",
    registry=REGISTRY,
)
FRAMES_REJECTED = Counter(
    "cctv_frames_rejected",
    "Uploads refused, by reason (the error code of the answer)",
    ["reason"],
    registry=REGISTRY,
)
BYTES_UPLOADED = Counter(
    "cctv_ingest_uploaded_bytes", "Bytes of the frames archived, as uploaded", registry=REGISTRY
)
BYTES_STORED = Counter(
    "cctv_ingest_stored_bytes",
    "Bytes written for the frames archived (the small copy)",
    registry=REGISTRY,
)
CACHE_REQUESTS = Counter(
    "cctv_restore_cache_requests",
    "Restored-frame requests answered from the restore cache (hit) or not (miss)",
    ["result"],
    registry=REGISTRY,
)
RESTORE_JOBS_FINISHED = Counter(
    "cctv_restore_jobs_finished",
    "Restore jobs finished here, by final state",
    ["state"],
    registry=REGISTRY,
)
RESTORE_FRAMES = Counter(
    "cctv_restore_frames",
    "Frames of finished restore jobs, by state",
    ["state"],
    registry=REGISTRY,
)
# From a few milliseconds (one cached frame) to the 30-minute job time limit.
_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
RESTORE_SECONDS = Histogram(
    "cctv_restore_job_duration_seconds",
    "Restore job run time, from its start to its end",
    buckets=_SECONDS,
    registry=REGISTRY,
)
QUEUE_WAIT_SECONDS = Histogram(
    "cctv_restore_queue_wait_seconds",
    "How long a restore job waited for a worker, from its creation to its start",
    buckets=_SECONDS,
    registry=REGISTRY,
)
MODEL = Info("cctv_model", "The restoration model this process serves", registry=REGISTRY)


def record_ingest(status: int, body: dict[str, object]) -> None:
    """Count one POST /v1/frames answer: `body` is its JSON (the frame, or the error)."""
    if status == 201:
        FRAMES_INGESTED.inc()
        original, stored = body.get("original"), body.get("stored")
        if isinstance(original, dict) and isinstance(stored, dict):
            BYTES_UPLOADED.inc(int(original.get("bytes", 0)))
            BYTES_STORED.inc(int(stored.get("bytes", 0)))
    elif status == 200:
        FRAMES_REPEATED.inc()
    elif status >= 400:
        error = body.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        FRAMES_REJECTED.labels(reason=str(code or f"http_{status}")[:40]).inc()


def record_cache(hit: bool) -> None:
    CACHE_REQUESTS.labels(result="hit" if hit else "miss").inc()


def record_restore_job(
    state: str,
    *,
    done: int,
    failed: int,
    created_at: datetime,
    started_at: datetime | None,
    finished_at: datetime,
) -> None:
    """Count a job that just finished (done or failed) and observe its wait and run time."""
    RESTORE_JOBS_FINISHED.labels(state=state).inc()
    RESTORE_FRAMES.labels(state="done").inc(done)
    RESTORE_FRAMES.labels(state="failed").inc(failed)
    if started_at is not None:
        QUEUE_WAIT_SECONDS.observe(max(0.0, (started_at - created_at).total_seconds()))
        RESTORE_SECONDS.observe(max(0.0, (finished_at - started_at).total_seconds()))


def record_model(
    name: str, weights_sha256: str, degradation_id: str, engine: str = "torch"
) -> None:
    MODEL.info(
        {
            "name": name,
            "weights_sha256": weights_sha256,
            "degradation": degradation_id,
            "engine": engine,
        }
    )


@dataclass(frozen=True)
class ArchiveSnapshot:
    """What the database says at scrape time."""

    frames: int
    bytes: dict[str, int]  # uploaded, stored, references, cache
    jobs: dict[str, int]  # restore jobs by state
    job_frames: dict[str, int]  # their frames by state
    queue_pending: int | None = None  # jobs waiting in an in-process pool (None: not known)


class ArchiveCollector(Collector):
    """Gauges read from the database at scrape time (the archive as a whole)."""

    def __init__(self, read: Callable[[], ArchiveSnapshot]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        snapshot = self._read()
        frames = GaugeMetricFamily("cctv_archive_frames", "Frames in the archive")
        frames.add_metric([], snapshot.frames)
        yield frames
        stored = GaugeMetricFamily(
            "cctv_archive_bytes",
            "Bytes of the archive: as uploaded, stored (frames and audit references), cache",
            labels=["kind"],
        )
        for kind, value in snapshot.bytes.items():
            stored.add_metric([kind], value)
        yield stored
        jobs = GaugeMetricFamily("cctv_restore_jobs", "Restore jobs by state", labels=["state"])
        for state, count in snapshot.jobs.items():
            jobs.add_metric([state], count)
        yield jobs
        items = GaugeMetricFamily(
            "cctv_restore_job_frames", "Frames of restore jobs by state", labels=["state"]
        )
        for state, count in snapshot.job_frames.items():
            items.add_metric([state], count)
        yield items
        if snapshot.queue_pending is not None:
            pending = GaugeMetricFamily(
                "cctv_restore_queue_pending", "Jobs waiting in this server's restore pool"
            )
            pending.add_metric([], snapshot.queue_pending)
            yield pending


def multiprocess() -> bool:
    """Whether this is one of several server processes (`serve --workers N`): their counters
    and histograms are kept in files under PROMETHEUS_MULTIPROC_DIR, set by `serve` before it
    starts them, and any one of them answers a scrape with the sum over all."""
    return bool(os.environ.get(MULTIPROC_DIR))


def exposition(*extra: Collector) -> bytes:
    """This process's metrics (all the server's processes' summed, with `serve --workers N`),
    then the `extra` collectors', in the text format."""
    if multiprocess():
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry)
        registry.register(MODEL)  # every process serves the same model
        for collector in extra:
            registry.register(collector)
        return generate_latest(registry)
    text = generate_latest(REGISTRY)
    if extra:
        registry = CollectorRegistry(auto_describe=False)
        for collector in extra:
            registry.register(collector)
        text += generate_latest(registry)
    return text


def serve_worker_metrics(base_port: int, index: int) -> int | None:
    """Serve REGISTRY over HTTP on base_port + index (a Celery pool process's own port); the
    port, or None when turned off (0) or taken (logged: a worker runs on without metrics)."""
    if base_port <= 0:
        return None
    port = base_port + index
    try:
        start_http_server(port, registry=REGISTRY)
    except OSError as exc:
        logger.warning("worker metrics: cannot listen on port %d: %s", port, exc)
        return None
    logger.info("worker metrics on port %d", port)
    return port
