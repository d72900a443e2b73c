"""Frame endpoints: ingest, listing, metadata and the stored (small) frame."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated

from anyio.to_thread import run_sync
from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile

from app.db import unit_of_work
from app.deps import ReadKey, SessionDep, StoreDep
from app.errors import UploadTooLarge
from app.frames import service
from app.frames.forms import Uploader
from app.frames.schemas import FramePage, FrameRead, Instant, parse_tags
from app.runtime import Runtime

router = APIRouter(prefix="/v1/frames", tags=["frames"])

CAMERA_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
ERRORS = {
    401: {"description": "missing or unknown API key"},
    403: {"description": "the key lacks the scope"},
}


@router.post(
    "",
    status_code=201,
    responses={
        200: {"model": FrameRead, "description": "the same frame was archived before"},
        413: {"description": "body over max_upload_bytes, or image over max_pixels"},
        415: {"description": "not a JPEG, PNG, WebP, BMP or AVIF image (by content)"},
        422: {"description": "truncated or corrupt image, or missing/malformed fields"},
        **ERRORS,
    },
)
async def upload_frame(
    principal: Uploader,
    request: Request,
    response: Response,
    file: Annotated[UploadFile, File(description="the frame: JPEG, PNG, WebP, BMP or AVIF")],
    camera_id: Annotated[str, Form(pattern=CAMERA_PATTERN, max_length=128)],
    captured_at: Annotated[Instant, Form(description="ISO 8601 with a UTC offset")],
    tags: Annotated[list[str] | None, Form(description="repeat, or comma-separate")] = None,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> FrameRead:
    """Archive one frame: validated, downsampled by the profile, stored small. 201 with the
    frame; 200 with the existing frame when the same camera sends the same bytes (or the same
    Idempotency-Key) again."""
    runtime: Runtime = request.app.state.runtime
    # The whole upload runs in one worker thread, and the answer is made back here: a sync
    # endpoint would cost a second thread hand-off, for FastAPI's serialisation of the answer.
    # While app.main.ingest_threads are all taken, the upload waits here, holding no thread.
    ingest = partial(
        _ingest,
        runtime,
        file,
        camera_id=camera_id,
        captured_at=captured_at,
        tags=parse_tags(tags),
        idempotency_key=idempotency_key,
    )
    result = await run_sync(ingest, limiter=request.app.state.ingest_threads)
    response.status_code = 201 if result.created else 200
    response.headers["Location"] = f"/v1/frames/{result.frame.id}"
    return FrameRead.of(result.frame)


def _ingest(
    runtime: Runtime,
    file: UploadFile,
    *,
    camera_id: str,
    captured_at: datetime,
    tags: list[str],
    idempotency_key: str | None,
) -> service.Ingested:
    settings = runtime.settings
    limit = settings.max_upload_bytes
    data = file.file.read(limit + 1)  # never more than one byte past the limit
    if len(data) > limit:
        raise UploadTooLarge(f"the file is over the {limit}-byte upload limit")
    upload = service.Upload(
        data=data,
        camera_id=camera_id,
        captured_at=captured_at,
        tags=tags,
        idempotency_key=idempotency_key,
    )
    # Committed here, in this thread, right after the row is inserted: with SessionDep the
    # commit came one thread hand-off later, and on SQLite every other upload's insert waited
    # for it (the write lock), in the busy handler's sleeps of 1 ms and more.
    with unit_of_work(runtime.session_factory) as session:
        return service.ingest_frame(
            upload,
            session=session,
            store=runtime.store,
            profile=runtime.profile,
            settings=settings,
        )


@router.get("", responses=ERRORS)
def list_frames(
    principal: ReadKey,
    session: SessionDep,
    camera_id: Annotated[str | None, Query(max_length=128)] = None,
    start: Annotated[Instant | None, Query(alias="from")] = None,
    end: Annotated[Instant | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> FramePage:
    """Frames in capture order, filtered by camera and capture time [from, to)."""
    frames, next_cursor = service.list_frames(
        session=session, camera_id=camera_id, start=start, end=end, cursor=cursor, limit=limit
    )
    return FramePage(items=[FrameRead.of(frame) for frame in frames], next_cursor=next_cursor)


@router.get("/{frame_id}", responses={404: {"description": "unknown frame"}, **ERRORS})
def get_frame(frame_id: str, principal: ReadKey, session: SessionDep) -> FrameRead:
    return FrameRead.of(service.get_frame(frame_id, session=session))


@router.get(
    "/{frame_id}/stored",
    response_class=Response,
    responses={
        200: {"content": {"image/webp": {}}},
        404: {"description": "unknown frame"},
        **ERRORS,
    },
)
def get_stored_frame(
    frame_id: str, principal: ReadKey, session: SessionDep, store: StoreDep
) -> Response:
    """The frame exactly as archived (reduced resolution); the read is audit-logged."""
    frame, data = service.read_stored(frame_id, session=session, store=store, principal=principal)
    extension = frame.stored_media_type.removeprefix("image/").replace("jpeg", "jpg")
    return Response(
        data,
        media_type=frame.stored_media_type,
        headers={
            "ETag": f'"{frame.stored_sha256}"',
            "Content-Disposition": f'inline; filename="{frame.id}-stored.{extension}"',
            "X-Source-Frame-Id": frame.id,
            "X-Source-Frame-SHA256": frame.original_sha256,
            "X-Stored-SHA256": frame.stored_sha256,
            "X-Degradation-Id": frame.degradation_id,
        },
    )
