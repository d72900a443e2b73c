"""What the lifecycle endpoints accept and return."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.frames.schemas import CameraId, Instant, check_selection
from app.lifecycle.models import CameraPolicy, EvidenceExport, LegalHold
from app.lifecycle.policy import Policy

FrameId = str
MAX_FRAME_IDS = 1000


# -- cameras and policies -------------------------------------------------------------------


class PolicyUpdate(BaseModel):
    """A camera's overrides; a field left out or null follows the archive's default."""

    model_config = ConfigDict(extra="forbid")

    retention_days: int | None = Field(None, ge=0, le=36_500, description="0: keep forever")
    quota_bytes: int | None = Field(None, ge=1, le=2**62, description="null: no quota")
    originals_hours: int | None = Field(None, ge=0, le=876_000, description="0: no originals")


class PolicyRead(BaseModel):
    camera_id: str
    retention_days: int | None
    quota_bytes: int | None
    originals_hours: int | None
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, row: CameraPolicy) -> PolicyRead:
        return cls(
            camera_id=row.camera_id,
            retention_days=row.retention_days,
            quota_bytes=row.quota_bytes,
            originals_hours=row.originals_hours,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
        )


class PolicyInForce(BaseModel):
    retention_days: int  # 0: keep forever
    quota_bytes: int | None
    originals_hours: int


class CameraUsageRead(BaseModel):
    frames: int
    bytes_kept: int  # stored frames, audit references and kept originals
    bytes_originals: int
    oldest_captured_at: datetime | None
    newest_captured_at: datetime | None


def projected_bytes(policy: Policy, daily_kept: float, daily_originals: float) -> int | None:
    """Where the camera's storage settles: the recent daily rate x retention days (originals for
    their window only), capped by the quota; None when nothing bounds it (keep forever)."""
    if policy.retention_days == 0:
        return policy.quota_bytes
    originals_days = min(policy.originals_hours / 24, policy.retention_days)
    settled = daily_kept * policy.retention_days + daily_originals * originals_days
    projected = math.ceil(settled)
    return projected if policy.quota_bytes is None else min(projected, policy.quota_bytes)


class CameraRead(BaseModel):
    camera_id: str
    policy: PolicyInForce
    overrides: PolicyUpdate | None  # null: the archive's defaults
    usage: CameraUsageRead
    daily_rate_bytes: int  # kept per day over the last 7 days of ingest
    projected_bytes: int | None  # where storage settles under the policy; null: unbounded

    @classmethod
    def of(
        cls,
        camera_id: str,
        policy: Policy,
        override: CameraPolicy | None,
        *,
        frames: int,
        bytes_kept: int,
        bytes_originals: int,
        oldest: datetime | None,
        newest: datetime | None,
        daily_kept: float,
        daily_originals: float,
    ) -> CameraRead:
        overrides = None
        if override is not None:
            overrides = PolicyUpdate(
                retention_days=override.retention_days,
                quota_bytes=override.quota_bytes,
                originals_hours=override.originals_hours,
            )
        originals_share = daily_originals if policy.originals_hours else 0.0
        return cls(
            camera_id=camera_id,
            policy=PolicyInForce(
                retention_days=policy.retention_days,
                quota_bytes=policy.quota_bytes,
                originals_hours=policy.originals_hours,
            ),
            overrides=overrides,
            usage=CameraUsageRead(
                frames=frames,
                bytes_kept=bytes_kept,
                bytes_originals=bytes_originals,
                oldest_captured_at=oldest,
                newest_captured_at=newest,
            ),
            daily_rate_bytes=round(daily_kept + originals_share),
            projected_bytes=projected_bytes(policy, daily_kept, originals_share),
        )


# -- selections (holds and exports) ---------------------------------------------------------


class Selection(BaseModel):
    """Either `frame_ids`, or a `camera_id` with an optional `from`/`to` capture-time range."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    frame_ids: list[FrameId] | None = Field(None, min_length=1, max_length=MAX_FRAME_IDS)
    camera_id: CameraId | None = None
    start: Instant | None = Field(None, alias="from")
    end: Instant | None = Field(None, alias="to")

    @model_validator(mode="after")
    def _one_selection(self) -> Any:
        check_selection(self.frame_ids, self.camera_id, self.start, self.end)
        if self.frame_ids is not None and any(len(f) > 64 for f in self.frame_ids):
            raise ValueError("frame ids are at most 64 characters")
        return self


# -- legal holds ----------------------------------------------------------------------------


class HoldCreate(Selection):
    case_reference: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=500)


class HoldRead(BaseModel):
    id: str
    case_reference: str
    reason: str
    frame_ids: list[str] | None  # the frames a hold names; null for a camera and range
    camera_id: str | None
    start: datetime | None = Field(serialization_alias="from")
    end: datetime | None = Field(serialization_alias="to")
    frames_held: int  # frames it covers now (a range hold also covers later uploads)
    active: bool
    created_by: str
    created_at: datetime
    released_at: datetime | None
    released_by: str | None
    release_reason: str | None

    @classmethod
    def of(cls, hold: LegalHold, frame_ids: list[str] | None, frames_held: int) -> HoldRead:
        return cls(
            id=hold.id,
            case_reference=hold.case_reference,
            reason=hold.reason,
            frame_ids=frame_ids,
            camera_id=hold.camera_id,
            start=hold.start,
            end=hold.end,
            frames_held=frames_held,
            active=hold.released_at is None,
            created_by=hold.created_by,
            created_at=hold.created_at,
            released_at=hold.released_at,
            released_by=hold.released_by,
            release_reason=hold.release_reason,
        )


class HoldList(BaseModel):
    items: list[HoldRead]


# -- exports --------------------------------------------------------------------------------


class Part(StrEnum):
    stored = "stored"  # the frame as archived (reduced resolution)
    original = "original"  # the upload's own bytes, where still kept
    restored = "restored"  # the AI restoration (EDSR): an AI-generated derivative
    bicubic = "bicubic"  # plain interpolation, for comparison


class ExportCreate(Selection):
    include: list[Part] = Field(
        default_factory=lambda: [Part.stored, Part.original], min_length=1, max_length=4
    )


class ExportLinks(BaseModel):
    self: str
    download: str


class ExportRead(BaseModel):
    id: str
    state: str  # queued, running, done, failed, expired (the bundle deleted after its TTL)
    frames: int
    include: list[str]
    requested_by: str
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None  # when a done export's bundle is deleted; None: kept forever
    bytes: int | None
    sha256: str | None  # of the ZIP
    error: str | None
    summary: dict[str, Any] | None  # files by role, originals no longer kept
    links: ExportLinks

    @classmethod
    def of(cls, export: EvidenceExport, ttl_days: int = 0) -> ExportRead:
        """The export as the API shows it; `ttl_days`: CCTV_EXPORT_TTL_DAYS (0: kept forever)."""
        done = export.state == "done"
        expires = None
        if done and ttl_days > 0 and export.finished_at is not None:
            expires = export.finished_at + timedelta(days=ttl_days)
        return cls(
            id=export.id,
            state=export.state,
            frames=len(export.frame_ids),
            include=list(export.include),
            requested_by=export.requested_by,
            created_at=export.created_at,
            finished_at=export.finished_at,
            expires_at=expires,
            bytes=export.bytes if done else None,
            sha256=export.sha256,
            error=export.error,
            summary=export.summary,
            links=ExportLinks(
                self=f"/v1/exports/{export.id}", download=f"/v1/exports/{export.id}/download"
            ),
        )


class SigningKeyRead(BaseModel):
    algorithm: str
    public_key_pem: str
    fingerprint_sha256: str  # SHA-256 of the raw 32-byte public key, hex


# -- audit ----------------------------------------------------------------------------------


class AuditEntryRead(BaseModel):
    id: int
    at: datetime
    key_name: str
    action: str
    frame_id: str | None
    detail: str
    client_address: str
    prev_hash: str
    row_hash: str


class AuditPage(BaseModel):
    items: list[AuditEntryRead]
    next_cursor: str | None
