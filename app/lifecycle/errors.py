"""The lifecycle's domain errors (each carries its HTTP status; rendered by app/error_handlers)."""

from __future__ import annotations

from app.errors import ArchiveError, NotFound


class HoldNotFound(NotFound):
    code = "legal_hold_not_found"


class CameraNotFound(NotFound):
    code = "camera_not_found"


class ExportNotFound(NotFound):
    code = "export_not_found"


class OriginalNotKept(NotFound):
    code = "original_not_kept"


class HoldReleased(ArchiveError):
    status_code = 409
    code = "legal_hold_released"


class ExportNotReady(ArchiveError):
    status_code = 409
    code = "export_not_ready"


class ExportExpired(ArchiveError):
    status_code = 410
    code = "export_expired"


class ExportTooLarge(ArchiveError):
    status_code = 422
    code = "export_too_large"
