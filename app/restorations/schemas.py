"""What the restoration endpoints accept and return."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.frames.schemas import CameraId, Instant, check_selection
from app.restorations.provenance import Method, OutputFormat


class RestoreJobCreate(BaseModel):
    """Either `frame_ids`, or a `camera_id` with an optional `from`/`to` capture-time range."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    frame_ids: list[str] | None = Field(None, min_length=1)
    camera_id: CameraId | None = None
    start: Instant | None = Field(None, alias="from")
    end: Instant | None = Field(None, alias="to")
    method: Method = Method.edsr
    format: OutputFormat = OutputFormat.png

    @model_validator(mode="after")
    def _one_selection(self) -> RestoreJobCreate:
        check_selection(self.frame_ids, self.camera_id, self.start, self.end)
        return self


class JobError(BaseModel):
    frame_id: str
    message: str


class JobItem(BaseModel):
    frame_id: str
    state: str  # pending, done, failed
    restored: str  # the frame endpoint that serves this restoration


class JobLinks(BaseModel):
    self: str


class RestoreJobRead(BaseModel):
    id: str
    state: str  # queued, running, done, failed
    method: Method
    format: OutputFormat
    total: int
    done: int
    failed: int
    pending: int
    errors: list[JobError]
    error: str | None  # why the job as a whole failed
    items: list[JobItem]
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # Seconds from acceptance until a worker started it (or until now, while still queued): a
    # job whose worker died waits up to the broker's visibility timeout before it is redelivered.
    waited_s: float
    links: JobLinks
