"""Ingest, look-up and stored reads of frames. Services take a session and never commit."""

from __future__ import annotations

import hashlib
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy.orm import Session

from app.auth.schemas import Principal
from app.auth.service import record_read
from app.config import Settings
from app.db import on_rollback, utcnow
from app.errors import FrameNotFound, IdempotencyConflict, InvalidInput
from app.frames import repository
from app.frames.images import DecodedUpload, decode_upload, encode_png
from app.frames.models import Frame
from app.frames.schemas import decode_cursor, encode_cursor
from app.lifecycle.policy import originals_hours
from app.storage import BlobStore
from models import Profile
from models.degradation import StoredFrame


@dataclass(frozen=True)
class Upload:
    data: bytes
    camera_id: str
    captured_at: datetime
    tags: list[str]
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Ingested:
    frame: Frame
    created: bool  # False: the same frame was archived before (idempotent repeat)


def new_id() -> str:
    return uuid.uuid4().hex


def stored_key(frame_id: str, extension: str) -> str:
    # Keys come from our own ids only; two hex characters of fan-out keep folders small.
    return f"frames/{frame_id[:2]}/{frame_id}.{extension}"


def reference_key(frame_id: str) -> str:
    return f"references/{frame_id[:2]}/{frame_id}.png"


def original_key(frame_id: str, image_format: str) -> str:
    return f"originals/{frame_id[:2]}/{frame_id}.{image_format}"


def in_audit_sample(sha256: str, rate: float) -> bool:
    """A stable, uniform choice from the content hash: the same frame is always (or never)
    sampled, whichever replica ingests it."""
    return int(sha256[:8], 16) < rate * 0x1_0000_0000


def ingest_frame(
    upload: Upload, *, session: Session, store: BlobStore, profile: Profile, settings: Settings
) -> Ingested:
    """Validate, downsample and store one uploaded frame; the row is committed with the request.

    The blob is written before the row, and removed again if the row is never committed, so a
    crash leaves at worst a blob without a row (which `verify` finds), never a row without a blob.
    """
    sha256 = hashlib.sha256(upload.data).hexdigest()
    facts = repository.upload_facts(session, upload.camera_id, sha256)
    existing = _existing(session, upload, sha256, facts)
    if existing is not None:
        return Ingested(existing, created=False)
    sampling = settings.audit_sample_rate > 0
    sampled = sampling and in_audit_sample(sha256, settings.audit_sample_rate)
    # A camera's first frame is a reference too: while the camera has none, the reference is
    # made with the image work, in the decode slot (kept only if this upload wins the claim).
    # An upload that found the camera's first frame recorded does not claim: were that frame
    # deleted meanwhile, the camera's next upload becomes its first.
    unclaimed = sampling and not facts.first_frame_claimed
    work = _image_work(upload.data, profile, settings, reference=sampled or unclaimed)
    frame_id = new_id()
    # The blob writes and SQL below wait on the disk (fsync) and on the database: other uploads
    # decode meanwhile, since this one's decode slot is free again.
    written: list[str] = []
    key = stored_key(frame_id, profile.extension)
    _put(store, session, written, key, work.stored.data, profile.media_type)
    sampled_reference = work.reference if sampled else None
    ref_key = None
    if sampled_reference is not None:
        ref_key = reference_key(frame_id)
        _put(store, session, written, ref_key, sampled_reference, "image/png")
    # Within the camera's originals window the upload is kept unchanged too (app/lifecycle).
    decoded = work.decoded
    kept_key = None
    if originals_hours(facts.originals_hours, settings) > 0:
        kept_key = original_key(frame_id, decoded.format)
        _put(store, session, written, kept_key, upload.data, f"image/{decoded.format}")

    frame = repository.insert_if_absent(
        session,
        {
            "id": frame_id,
            "camera_id": upload.camera_id,
            "captured_at": upload.captured_at,
            "created_at": utcnow(),
            "tags": upload.tags,
            "idempotency_key": upload.idempotency_key,
            "original_sha256": sha256,
            "original_format": decoded.format,
            "original_bytes": len(upload.data),
            "original_width": decoded.width,
            "original_height": decoded.height,
            "exif_orientation": decoded.exif_orientation,
            "stored_key": key,
            "stored_codec": profile.codec,
            "stored_media_type": profile.media_type,
            "stored_sha256": hashlib.sha256(work.stored.data).hexdigest(),
            "stored_bytes": len(work.stored.data),
            "stored_width": work.stored.width,
            "stored_height": work.stored.height,
            "scale": profile.scale,
            "degradation_id": profile.degradation_id,
            "reference_key": ref_key,
            "reference_bytes": len(sampled_reference) if sampled_reference is not None else 0,
            "original_key": kept_key,
        },
    )
    if frame is None:
        # The same upload raced us in and won: keep its copy, drop ours.
        for blob in written:
            store.delete(blob)
        existing = _existing(session, upload, sha256)
        if existing is None:
            raise RuntimeError(f"frame insert for camera {upload.camera_id!r} conflicted")
        return Ingested(existing, created=False)
    # The camera's first frame is always a reference. Claimed after the frame row, in the same
    # transaction: of concurrent first uploads exactly one claims it (and a rollback frees it).
    first = unclaimed and repository.claim_first_frame(session, upload.camera_id, frame_id)
    if first and ref_key is None:
        assert work.reference is not None  # made in the decode slot, as the camera had none
        ref_key = reference_key(frame_id)
        _put(store, session, written, ref_key, work.reference, "image/png")
        repository.set_reference(session, frame, ref_key, len(work.reference))
    return Ingested(frame, created=True)


@dataclass(frozen=True)
class ImageWork:
    decoded: DecodedUpload  # its image already closed: only the facts about the upload remain
    stored: StoredFrame
    reference: bytes | None  # the canonical HR image as PNG, when asked for


def _image_work(data: bytes, profile: Profile, settings: Settings, *, reference: bool) -> ImageWork:
    """Decode, canonicalise, downsample and encode in one of the process's decode slots.

    A decoded frame holds about max_pixels x 4 bytes (Pillow keeps RGB in 4 bytes a pixel) and
    its working copies: bounding how many are decoded at once bounds the server's memory, so
    every image is closed before the slot is let go, and the slot is held for the image work
    alone (not for the blob writes and SQL)."""
    allowed, max_pixels, level = (
        settings.allowed_formats,
        settings.max_pixels,
        settings.lossless_level,
    )
    with decode_slots(settings.max_concurrent_decodes):
        if not profile.draft:
            decoded = decode_upload(data, allowed=allowed, max_pixels=max_pixels)
            with decoded.image as image, profile.canonicalise(image) as hr:  # upright 8-bit RGB
                stored = profile.store_canonical(hr, lossless_level=level)
                return ImageWork(decoded, stored, encode_png(hr) if reference else None)
        # A draft profile never needs the full-size picture, except for a reference.
        decoded = decode_upload(data, allowed=allowed, max_pixels=max_pixels, draft=profile)
        with decoded.image as image:
            lr = profile.draft_lr(image, decoded.upright_size, decoded.reduced_by)
        with lr:
            stored = profile.store_lr(lr, lossless_level=level)
        if not reference:
            return ImageWork(decoded, stored, None)
        full = decode_upload(data, allowed=allowed, max_pixels=max_pixels)
        with full.image as image, profile.canonicalise(image) as hr:
            return ImageWork(decoded, stored, encode_png(hr))


@lru_cache
def decode_slots(count: int) -> threading.BoundedSemaphore:
    """The process's decode slots (one semaphore per configured count)."""
    return threading.BoundedSemaphore(count)


def _existing(
    session: Session, upload: Upload, sha256: str, facts: repository.UploadFacts | None = None
) -> Frame | None:
    """The frame this upload repeats: by its Idempotency-Key, else by camera and bytes (`facts`
    when already read)."""
    if upload.idempotency_key is not None:
        frame = repository.by_idempotency_key(session, upload.idempotency_key)
        if frame is not None:
            if not _same_request(frame, upload, sha256):
                # Say nothing of the frame the key belongs to: it may be another camera's.
                raise IdempotencyConflict(
                    "this Idempotency-Key was already used for a different request "
                    "(file, camera_id, captured_at or tags); use a new key for a new frame"
                )
            return frame
    if facts is None:
        facts = repository.upload_facts(session, upload.camera_id, sha256)
    return None if facts.existing_id is None else repository.get(session, facts.existing_id)


def _same_request(frame: Frame, upload: Upload, sha256: str) -> bool:
    """Whether `upload` repeats the request that archived `frame` (times compared as instants)."""
    return (frame.camera_id, frame.original_sha256, frame.captured_at, list(frame.tags)) == (
        upload.camera_id,
        sha256,
        upload.captured_at,
        upload.tags,
    )


def _put(
    store: BlobStore, session: Session, written: list[str], key: str, data: bytes, media_type: str
) -> None:
    store.put(key, data, content_type=media_type)
    written.append(key)
    on_rollback(session, lambda: store.delete(key))


def get_frame(frame_id: str, *, session: Session) -> Frame:
    frame = repository.get(session, frame_id)
    if frame is None:
        raise FrameNotFound(f"no frame {frame_id!r}")
    return frame


def list_frames(
    *,
    session: Session,
    camera_id: str | None,
    start: datetime | None,
    end: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Frame], str | None]:
    """One page of frames in capture order, and the cursor of the next page (None at the end)."""
    if start is not None and end is not None and end <= start:
        raise InvalidInput("'to' must be after 'from'")
    after = decode_cursor(cursor) if cursor else None
    frames = repository.page(
        session, camera_id=camera_id, start=start, end=end, after=after, limit=limit + 1
    )
    more = len(frames) > limit
    frames = frames[:limit]
    return frames, encode_cursor(frames[-1]) if more else None


def read_stored(
    frame_id: str, *, session: Session, store: BlobStore, principal: Principal
) -> tuple[Frame, bytes]:
    """The frame as stored (small), with the read written to the audit log."""
    frame = get_frame(frame_id, session=session)
    data = store.get(frame.stored_key)
    record_read(principal, "frame.stored.read", frame.id, session=session)
    return frame, data
