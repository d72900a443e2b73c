"""GET /v1/stats/storage and /v1/stats/quality (the dashboard page draws them: app/web)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import ReadKey, RestorerDep, SessionDep, SettingsDep
from app.stats.schemas import QualityStats, StorageStats
from app.stats.service import quality_stats, storage_stats

router = APIRouter(tags=["stats"])


@router.get("/v1/stats/storage", response_model=StorageStats)
def get_storage_stats(
    principal: ReadKey,
    session: SessionDep,
    settings: SettingsDep,
    days: Annotated[int, Query(ge=1, le=3660, description="most recent capture days")] = 90,
) -> StorageStats:
    """Frames and bytes (uploaded, stored, restore cache) with the savings ratio, in total, per
    camera and per capture day; per camera also the retention in force and the storage it
    settles at (projected_bytes)."""
    return storage_stats(session=session, days=days, settings=settings)


@router.get("/v1/stats/quality", response_model=QualityStats)
def get_quality_stats(
    principal: ReadKey, session: SessionDep, restorer: RestorerDep
) -> QualityStats:
    """PSNR-Y of the serving model and of bicubic against the HR references kept for the audit
    sample, per camera (measured in the background, or by `cctv-archive measure`); and whether
    the archive beats recompressing the whole frame: the HR reference as WebP (method 6) at the
    highest quality no larger than the stored frame, over the same frames (frames_compared,
    psnr_y_restored_compared, psnr_y_recompressed, recompression_gain_db, frames_no_webp_fit,
    beats_recompression)."""
    return quality_stats(session=session, restorer=restorer)
