"""What the frame endpoints accept and return."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, StringConstraints
from pydantic_core import PydanticCustomError

from app.errors import InvalidInput
from app.frames.models import Frame

CameraId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", max_length=128)
]
_NUMBER = re.compile(r"\s*[+-]?\d+(\.\d*)?\s*")
ISO_8601 = "ISO 8601 with a UTC offset is required, e.g. 2024-05-01T12:00:00Z"


def _not_a_number(value: Any) -> Any:
    # Pydantic would read "1714564800" as Unix seconds (or milliseconds, by guessing).
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise PydanticCustomError("iso_8601_required", f"{ISO_8601}, not an epoch number")
    return value


def _within_utc_years(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "instant_out_of_range", "the instant falls outside years 1-9999 once in UTC"
        ) from None


# A point in time as the API accepts it: ISO 8601 with an offset, representable in UTC.
Instant = Annotated[
    AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_within_utc_years)
]

TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:=-]{0,63}$"
MAX_TAGS = 32


class OriginalInfo(BaseModel):
    format: str
    width: int
    height: int
    bytes: int
    sha256: str
    kept: bool = False  # the upload's bytes are kept: GET /v1/frames/{id}/original serves them


class StoredInfo(BaseModel):
    codec: str
    media_type: str
    width: int
    height: int
    bytes: int
    sha256: str


class FrameLinks(BaseModel):
    self: str
    stored: str
    restored: str


class FrameRead(BaseModel):
    id: str
    camera_id: str
    captured_at: datetime
    created_at: datetime
    tags: list[str]
    original: OriginalInfo
    stored: StoredInfo
    degradation_id: str
    scale: int
    exif_orientation: int | None  # EXIF orientation (2-8) applied before storing; null: upright
    audit_reference: bool  # the canonical HR frame is kept (audit sample)
    links: FrameLinks

    @classmethod
    def of(cls, frame: Frame) -> FrameRead:
        base = f"/v1/frames/{frame.id}"
        return cls(
            id=frame.id,
            camera_id=frame.camera_id,
            captured_at=frame.captured_at,
            created_at=frame.created_at,
            tags=list(frame.tags),
            original=OriginalInfo(
                format=frame.original_format,
                width=frame.original_width,
                height=frame.original_height,
                bytes=frame.original_bytes,
                sha256=frame.original_sha256,
                kept=frame.original_key is not None,
            ),
            stored=StoredInfo(
                codec=frame.stored_codec,
                media_type=frame.stored_media_type,
                width=frame.stored_width,
                height=frame.stored_height,
                bytes=frame.stored_bytes,
                sha256=frame.stored_sha256,
            ),
            degradation_id=frame.degradation_id,
            scale=frame.scale,
            exif_orientation=frame.exif_orientation,
            audit_reference=frame.reference_key is not None,
            links=FrameLinks(self=base, stored=f"{base}/stored", restored=f"{base}/restored"),
        )


class FramePage(BaseModel):
    items: list[FrameRead]
    next_cursor: str | None  # pass as ?cursor= for the next page; null on the last page


def parse_tags(values: list[str] | None) -> list[str]:
    """Tags from repeated form fields and/or comma-separated lists, deduplicated, in order."""
    tags: list[str] = []
    for value in values or []:
        for tag in value.split(","):
            tag = tag.strip()
            if tag and tag not in tags:
                tags.append(tag)
    bad = [tag for tag in tags if not re.match(TAG_PATTERN, tag)]
    if bad:
        shown = bad[0] if len(bad[0]) <= 64 else bad[0][:61] + "..."
        raise InvalidInput(f"invalid tag '{shown}': 1-64 letters, digits, '.', '_', ':', '=', '-'")
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags per frame")
    return tags


def encode_cursor(frame: Frame) -> str:
    raw = json.dumps([frame.captured_at.isoformat(), frame.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (captured_at, id) a cursor points after; InvalidInput for anything we did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        captured_at, frame_id = json.loads(raw)
        instant = datetime.fromisoformat(captured_at)
        if instant.tzinfo is None or not isinstance(frame_id, str):
            raise ValueError("not a cursor of ours")
        return instant.astimezone(UTC), frame_id
    except (binascii.Error, ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput("invalid cursor: pass next_cursor from the previous page") from exc


def check_selection(
    frame_ids: list[str] | None,
    camera_id: str | None,
    start: datetime | None,
    end: datetime | None,
) -> None:
    """A request selects either `frame_ids`, or a `camera_id` with an optional `from`/`to`
    range (restore jobs, holds, exports); ValueError says what is wrong."""
    if (frame_ids is None) == (camera_id is None):
        raise ValueError("give either frame_ids, or camera_id with an optional from/to range")
    if frame_ids is not None and (start or end):
        raise ValueError("from/to select frames of a camera_id; not with frame_ids")
    if start and end and end <= start:
        raise ValueError("'to' must be after 'from'")
