"""Storage accounting: what was uploaded, what is kept, and what restorations cost."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


def savings_ratio(bytes_uploaded: int, bytes_stored: int, bytes_cache: int) -> float:
    """1 - (stored + cache) / uploaded: the share of uploaded bytes the archive does not keep.
    Cache bytes count against it; 0 when nothing was uploaded."""
    if bytes_uploaded <= 0:
        return 0.0
    return 1.0 - (bytes_stored + bytes_cache) / bytes_uploaded


class Usage(BaseModel):
    frames: int
    bytes_uploaded: int  # originals as received (not kept)
    bytes_stored: int  # stored frames, the audit sample's HR references and kept originals
    bytes_cache: int  # restorations in the restore cache
    savings_ratio: float

    @classmethod
    def of(cls, frames: int, uploaded: int, stored: int, cache: int) -> Usage:
        return cls(
            frames=frames,
            bytes_uploaded=uploaded,
            bytes_stored=stored,
            bytes_cache=cache,
            savings_ratio=savings_ratio(uploaded, stored, cache),
        )


class CameraUsage(Usage):
    camera_id: str
    bytes_originals: int = 0  # uploads kept unchanged (originals window, legal holds)
    # The camera's lifecycle policy in force (GET /v1/cameras) and where its storage settles:
    # the recent daily rate x retention days, capped by the quota; null when nothing bounds it.
    retention_days: int | None = None  # 0: keep forever
    quota_bytes: int | None = None
    originals_hours: int | None = None
    projected_bytes: int | None = None


class DailyUsage(Usage):
    date: dt.date  # capture date (UTC)


class StorageStats(BaseModel):
    totals: Usage
    cameras: list[CameraUsage]
    daily: list[DailyUsage]
    generated_at: dt.datetime


class Quality(BaseModel):
    """Mean PSNR-Y (dB) against the kept HR references: the model, bicubic, and the difference."""

    frames_measured: int
    psnr_y_edsr: float | None
    psnr_y_bicubic: float | None
    gain_db: float | None

    @classmethod
    def of(cls, frames: int, edsr: float, bicubic: float) -> Quality:
        if frames == 0:
            return cls(frames_measured=0, psnr_y_edsr=None, psnr_y_bicubic=None, gain_db=None)
        return cls(
            frames_measured=frames,
            psnr_y_edsr=round(edsr, 3),
            psnr_y_bicubic=round(bicubic, 3),
            gain_db=round(edsr - bicubic, 3),
        )


class CameraQuality(Quality):
    camera_id: str


class ModelRef(BaseModel):
    name: str
    weights_sha256: str


class QualityStats(BaseModel):
    model: ModelRef
    totals: Quality
    cameras: list[CameraQuality]
