"""Measuring restorations against the HR references kept for the audit sample.

The protocol of the published tables (models.metrics): PSNR on the BT.601 Y channel with `scale`
pixels shaved from each border, for the model and for bicubic on the same stored frame, and for
the whole-frame alternative at the same bytes (the reference recompressed with WebP at the highest
quality no larger than the stored frame: app/stats/recompression.py).
"""

from __future__ import annotations

import logging

import numpy as np
from sqlalchemy.orm import Session

from app.db import SessionFactory, unit_of_work, utcnow
from app.errors import BlobNotFound
from app.frames import repository as frames_repository
from app.frames.models import Frame
from app.restorations.model import RestoreModel, can_restore
from app.stats import repository
from app.stats.models import FrameQuality
from app.stats.recompression import Recompressed, recompress_within
from app.storage import BlobStore
from models import bicubic_upscale, decode_image
from models.metrics import psnr_y

logger = logging.getLogger(__name__)

# Identical images have infinite PSNR; a finite ceiling keeps averages and JSON meaningful.
MAX_PSNR_DB = 100.0


def _psnr_y_recompressed(recompressed: Recompressed, hr: np.ndarray, scale: int) -> float | None:
    """PSNR-Y of the decoded WebP frame (same protocol and cap); None when no WebP frame fits."""
    if recompressed.data is None:
        return None
    return min(psnr_y(decode_image(recompressed.data), hr, scale), MAX_PSNR_DB)


def _unmeasured(session: Session, restorer: RestoreModel, limit: int) -> list[Frame]:
    degradations = frames_repository.reference_degradations(session)
    compatible = [d for d in degradations if can_restore(restorer, d)]
    return repository.unmeasured_frames(session, restorer.weights_sha256, compatible, limit)


def measure_quality(
    *,
    session_factory: SessionFactory,
    store: BlobStore,
    restorer: RestoreModel,
    limit: int = 32,
) -> int:
    """Measure up to `limit` audit-sample frames not yet measured with this model (or measured
    before the whole-frame WebP comparison existed); returns how many were measured."""
    with session_factory() as session:
        frames = _unmeasured(session, restorer, limit)
    pairs: list[tuple[Frame, np.ndarray, np.ndarray, Recompressed]] = []
    for frame in frames:
        assert frame.reference_key is not None
        try:
            hr = decode_image(store.get(frame.reference_key))
            stored = store.get(frame.stored_key)
        except BlobNotFound as exc:
            logger.warning("quality: frame %s has a missing blob (%s)", frame.id, exc.message)
            continue
        lr = decode_image(stored)
        if (lr.shape[0] * frame.scale, lr.shape[1] * frame.scale) != hr.shape[:2]:
            logger.warning("quality: frame %s: stored and reference sizes disagree", frame.id)
            continue
        # The whole frame recompressed for the bytes the archive spends on the small one.
        recompressed = recompress_within(hr, frame.stored_bytes or len(stored))
        pairs.append((frame, lr, hr, recompressed))
    if not pairs:
        return 0
    restored = restorer.restore([lr for _, lr, _, _ in pairs])
    now = utcnow()
    with unit_of_work(session_factory) as session:
        for (frame, lr, hr, recompressed), sr in zip(pairs, restored, strict=True):
            bicubic = bicubic_upscale(lr, frame.scale)
            repository.save_quality(
                session,
                FrameQuality(
                    frame_id=frame.id,
                    weights_sha256=restorer.weights_sha256,
                    model_name=restorer.name,
                    psnr_y_edsr=min(psnr_y(sr, hr, frame.scale), MAX_PSNR_DB),
                    psnr_y_bicubic=min(psnr_y(bicubic, hr, frame.scale), MAX_PSNR_DB),
                    measured_at=now,
                    psnr_y_recompressed=_psnr_y_recompressed(recompressed, hr, frame.scale),
                    recompressed_bytes=recompressed.size,
                    recompressed_quality=recompressed.quality,
                ),
            )
    return len(pairs)
