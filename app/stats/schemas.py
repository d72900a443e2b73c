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
    """Mean PSNR-Y (dB) against the kept HR references: the model, bicubic, and the difference;
    and the archive against recompressing the whole frame: the HR reference encoded with WebP
    (method 6) at the highest quality no larger than the stored frame, over the same frames."""

    frames_measured: int
    psnr_y_edsr: float | None
    psnr_y_bicubic: float | None
    gain_db: float | None
    # Frames for which a whole-frame WebP at most the stored frame's size exists, and over those
    # frames the model's mean PSNR-Y, the WebP frame's, and the difference (model - WebP).
    frames_compared: int = 0
    psnr_y_restored_compared: float | None = None
    psnr_y_recompressed: float | None = None
    recompression_gain_db: float | None = None
    # Frames for which even WebP quality 0 is larger than the stored frame (the archive wins by
    # reaching a size recompression cannot).
    frames_no_webp_fit: int = 0
    # Whether the archive beats whole-frame WebP at equal bytes: recompression_gain_db > 0 where
    # frames were compared, else true when no WebP frame was small enough; null: not measured.
    beats_recompression: bool | None = None

    @classmethod
    def of(
        cls,
        frames: int,
        edsr: float,
        bicubic: float,
        recompression: tuple[int, float | None, float | None, int] = (0, None, None, 0),
    ) -> Quality:
        if frames == 0:
            return cls(frames_measured=0, psnr_y_edsr=None, psnr_y_bicubic=None, gain_db=None)
        return cls(
            frames_measured=frames,
            psnr_y_edsr=round(edsr, 3),
            psnr_y_bicubic=round(bicubic, 3),
            gain_db=round(edsr - bicubic, 3),
            **versus_recompression(*recompression),
        )


def versus_recompression(
    compared: int, restored: float | None, recompressed: float | None, no_fit: int
) -> dict[str, object]:
    """The Quality fields comparing the archive with whole-frame WebP at equal bytes."""
    fields: dict[str, object] = {"frames_compared": compared, "frames_no_webp_fit": no_fit}
    if compared and restored is not None and recompressed is not None:
        gain = round(restored - recompressed, 3)
        fields.update(
            psnr_y_restored_compared=round(restored, 3),
            psnr_y_recompressed=round(recompressed, 3),
            recompression_gain_db=gain,
            beats_recompression=gain > 0,
        )
    elif no_fit:
        fields["beats_recompression"] = True
    return fields


class CameraQuality(Quality):
    camera_id: str


class ModelRef(BaseModel):
    name: str
    weights_sha256: str


class QualityStats(BaseModel):
    model: ModelRef
    totals: Quality
    cameras: list[CameraQuality]
