"""Every table, imported in one place so `Base.metadata` is complete (migrations, tests)."""

from app.auth.models import ApiKey, AuditLogEntry
from app.db import Base
from app.frames.models import CameraFirstFrame, Frame
from app.lifecycle.models import CameraPolicy, EvidenceExport, LegalHold, LegalHoldFrame
from app.restorations.models import CachedRestoration, RestoreJob, RestoreJobItem
from app.stats.models import FrameQuality

metadata = Base.metadata

__all__ = [
    "ApiKey",
    "AuditLogEntry",
    "CachedRestoration",
    "CameraFirstFrame",
    "CameraPolicy",
    "EvidenceExport",
    "Frame",
    "FrameQuality",
    "LegalHold",
    "LegalHoldFrame",
    "RestoreJob",
    "RestoreJobItem",
    "metadata",
]
