"""Restorations and their cache: made from the stored frame, labelled, kept for a TTL.

Shared by the restore task (run_restore_job), on-demand restores and the housekeeping sweep.
Saving one is two steps: `write_restorations` writes the blobs (outside any transaction), then
`record_restorations` adds the rows inside the caller's transaction. A restoration is cached
under (frame, model weights, method, format); expired entries are deleted on read and by the
sweep, row first and blob after, so no row points at a missing blob.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import numpy as np
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import SessionFactory, on_commit, on_rollback, unit_of_work, utcnow
from app.errors import BlobNotFound
from app.frames.models import Frame
from app.restorations import repository
from app.restorations.model import RestoreModel
from app.restorations.models import CachedRestoration
from app.restorations.provenance import (
    UNKNOWN_ENGINE,
    Method,
    OutputFormat,
    Provenance,
    encode_restored,
)
from app.storage import BlobStore
from models import bicubic_upscale, decode_image

logger = logging.getLogger(__name__)

# Restorations of one batch encoded and written at once: one thread per core this process may use.
ENCODE_THREADS = (
    len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
)


@dataclass(frozen=True)
class Restored:
    data: bytes
    media_type: str
    provenance: Provenance


@dataclass(frozen=True)
class Written:
    """A restoration's blob, written and not yet recorded."""

    key: str
    data: bytes
    engine: str  # what made the pixels, as embedded in `data` ("" for bicubic)


# -- identity and provenance ----------------------------------------------------------------


def identity(method: Method, restorer: RestoreModel) -> tuple[str, str]:
    """(model name, weights SHA-256) a restoration is cached under; bicubic has no weights."""
    if method is Method.bicubic:
        return "bicubic", ""
    return restorer.name, restorer.weights_sha256


def provenance_of(
    frame: Frame,
    method: Method,
    restorer: RestoreModel,
    *,
    made_by: CachedRestoration | None = None,
) -> Provenance:
    """The provenance of `frame` restored by `method` with `restorer`: of pixels made now, or,
    with `made_by`, of the cached entry's pixels (its recorded model name and engine: the engine
    running now need not be the one that made them)."""
    model_name, weights = identity(method, restorer)
    engine = getattr(restorer, "engine", "torch") if method is Method.edsr else ""
    if made_by is not None:
        model_name, engine = made_by.model_name, recorded_engine(made_by, method)
    return Provenance(
        frame_id=frame.id,
        source_sha256=frame.original_sha256,
        stored_sha256=frame.stored_sha256,
        source_degradation_id=frame.degradation_id,
        method=method,
        model_name=model_name,
        weights_sha256=weights,
        model_degradation_id=restorer.degradation_id if method is Method.edsr else "",
        engine=engine,
    )


def recorded_engine(entry: CachedRestoration, method: Method) -> str:
    """The engine that made a cached entry's pixels: "" for bicubic, UNKNOWN_ENGINE for an
    entry cached before the engine was recorded."""
    if method is Method.bicubic:
        return ""
    return entry.engine or UNKNOWN_ENGINE


def restored_key(frame_id: str, fmt: OutputFormat) -> str:
    # A fresh name per restoration: blob writes never overwrite, and an expired entry's blob
    # may still be there when the next restoration of the same frame is written.
    return f"restored/{frame_id[:2]}/{frame_id}/{uuid.uuid4().hex}.{fmt.extension}"


# -- the cache ------------------------------------------------------------------------------


def cached(
    frame: Frame,
    method: Method,
    fmt: OutputFormat,
    *,
    session: Session,
    store: BlobStore,
    restorer: RestoreModel,
) -> Restored | None:
    """The cached restoration, if there is a fresh one. An expired entry is deleted on the way
    (its blob once the deletion is committed)."""
    _, weights = identity(method, restorer)
    entry = repository.cache_entry(session, frame.id, weights, method.value, fmt.value)
    if entry is None:
        return None
    if entry.expires_at <= utcnow():
        _drop_entries(session, store, [entry])
        return None
    try:
        data = store.get(entry.blob_key)
    except BlobNotFound:
        logger.warning("cache entry %s has no blob %s; dropping it", entry.id, entry.blob_key)
        _drop_entries(session, store, [entry])
        return None
    return Restored(data, entry.media_type, provenance_of(frame, method, restorer, made_by=entry))


def expiry(now: datetime, settings: Settings) -> datetime:
    return now + timedelta(seconds=settings.restore_cache_ttl_s)


def _drop_entries(session: Session, store: BlobStore, entries: list[CachedRestoration]) -> None:
    repository.delete_entries(session, [entry.id for entry in entries])
    for key in [entry.blob_key for entry in entries]:
        on_commit(session, lambda key=key: store.delete(key))


def sweep_expired_cache(
    *, session_factory: SessionFactory, store: BlobStore, batch: int = 500
) -> int:
    """Delete every expired cache entry (row first, then blob); returns how many."""
    total = 0
    while True:
        with unit_of_work(session_factory) as session:
            entries = repository.expired_entries(session, utcnow(), batch)
            _drop_entries(session, store, entries)
        total += len(entries)
        if len(entries) < batch:
            return total


# -- restoring ------------------------------------------------------------------------------


def restore_pixels(
    frames: list[Frame], method: Method, *, store: BlobStore, restorer: RestoreModel
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Restored pixels by frame id, and the reason for each frame that could not be restored.

    A store that is down (StorageUnavailable) is raised, not recorded: the job is retried.
    """
    inputs: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    for frame in frames:
        try:
            inputs[frame.id] = decode_image(store.get(frame.stored_key))
        except BlobNotFound:
            errors[frame.id] = "the stored frame is missing from the blob store"
        except (OSError, ValueError) as exc:
            errors[frame.id] = f"the stored frame cannot be decoded: {exc}"
    if method is Method.bicubic:
        scales = {frame.id: frame.scale for frame in frames}
        return {fid: bicubic_upscale(px, scales[fid]) for fid, px in inputs.items()}, errors
    ids = list(inputs)
    outputs = restorer.restore([inputs[fid] for fid in ids]) if ids else []
    return dict(zip(ids, outputs, strict=True)), errors


def write_restorations(
    outputs: dict[str, np.ndarray],
    frames: dict[str, Frame],
    method: Method,
    fmt: OutputFormat,
    *,
    store: BlobStore,
    restorer: RestoreModel,
) -> dict[str, Written]:
    """Encode each restoration with its provenance and write its blob; returns them by frame
    id. A batch is encoded and written on up to ENCODE_THREADS threads at once: the encoders
    release the GIL, and on a GPU the encode, not the network, sets a job's pace. If a write
    fails, the blobs already written are deleted and the error raised."""

    def write(fid: str) -> Written:
        provenance = provenance_of(frames[fid], method, restorer)
        data = encode_restored(outputs[fid], fmt, provenance)
        key = restored_key(fid, fmt)
        store.put(key, data, content_type=fmt.media_type)
        return Written(key, data, provenance.engine)

    ids = list(outputs)
    if len(ids) <= 1:  # the frame a request waits for: no thread hand-off
        calls = [(fid, _outcome(write, fid)) for fid in ids]
    else:
        with ThreadPoolExecutor(min(len(ids), ENCODE_THREADS)) as pool:
            calls = list(zip(ids, pool.map(partial(_outcome, write), ids), strict=True))
    written = {fid: result for fid, result in calls if isinstance(result, Written)}
    failed = [result for _, result in calls if not isinstance(result, Written)]
    if failed:
        for entry in written.values():
            store.delete(entry.key)
        raise failed[0]
    return written


def _outcome(write: Callable[[str], Written], fid: str) -> Written | BaseException:
    """`write(fid)`, or what it raised: every write of a batch ends before any is undone."""
    try:
        return write(fid)
    except BaseException as exc:
        return exc


def record_restorations(
    session: Session,
    written: dict[str, Written],
    method: Method,
    fmt: OutputFormat,
    *,
    store: BlobStore,
    restorer: RestoreModel,
    settings: Settings,
) -> None:
    """Add the cache entries of blobs just written, in the caller's transaction: if it rolls
    back the blobs are deleted; a restoration another process cached first keeps its entry and
    this blob is deleted once the transaction commits."""
    for entry in written.values():
        on_rollback(session, lambda key=entry.key: store.delete(key))
    now = utcnow()
    model_name, weights = identity(method, restorer)
    for fid, entry in written.items():
        old = repository.cache_entry(session, fid, weights, method.value, fmt.value)
        if old is not None and old.expires_at <= now:
            _drop_entries(session, store, [old])
        added = repository.insert_cache_if_absent(
            session,
            {
                "frame_id": fid,
                "method": method.value,
                "format": fmt.value,
                "model_name": model_name,
                "weights_sha256": weights,
                "engine": entry.engine,
                "blob_key": entry.key,
                "media_type": fmt.media_type,
                "bytes": len(entry.data),
                "created_at": now,
                "expires_at": expiry(now, settings),
            },
        )
        if not added:  # restored twice at once; the first entry stands
            on_commit(session, lambda key=entry.key: store.delete(key))
