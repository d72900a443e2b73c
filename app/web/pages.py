"""The pages: /login and /logout, /dashboard, /frames (browser) and /frames/{id} (viewer), and the
images the viewer shows. Every page needs a signed-in key with the read scope; images are read
through the same services as the API, so each read is in the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from app.auth.schemas import Scope
from app.auth.service import record_read
from app.config import Settings
from app.deps import QueueDep, RestoreDep, RestorerDep, SessionDep, SettingsDep, StoreDep
from app.errors import ArchiveError, FrameNotFound
from app.frames import service as frames
from app.frames.schemas import FrameRead
from app.observability import repository
from app.restorations.cache import provenance_of
from app.restorations.endpoints import get_restored_frame
from app.restorations.model import can_restore
from app.restorations.provenance import Method, OutputFormat
from app.stats.dashboard import build_dashboard
from app.web import actions, charts
from app.web.session import (
    COOKIE,
    PageForbidden,
    PageKey,
    SessionSigner,
    SignerDep,
    SignInRequired,
    key_for_sign_in,
    principal_of,
    safe_next,
)
from app.web.templating import page

router = APIRouter(include_in_schema=False)

FRAMES_PER_PAGE = 48
MAX_KEY_CHARS = 200


# -- signing in ------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return page(request, "login.html", next=safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse, dependencies=[actions.SameOrigin])
def login(
    request: Request,
    session: SessionDep,
    signer: SignerDep,
    settings: SettingsDep,
    api_key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """A valid key with the read scope gets the session cookie and goes on to `next`."""
    destination = safe_next(next)
    key = None
    if api_key.strip() and len(api_key) <= MAX_KEY_CHARS:
        key = key_for_sign_in(api_key, session=session)
    if key is None:
        error = "Unknown or revoked API key."
        return page(request, "login.html", 401, next=destination, error=error)
    principal = principal_of(key)
    if not principal.allows(Scope.read):
        error = f"The key {principal.name!r} lacks the read scope these pages need."
        return page(request, "login.html", 403, next=destination, error=error)
    response = RedirectResponse(destination, status_code=303)
    _set_cookie(response, signer.issue(key), signer, settings)
    return response


def _set_cookie(response: Response, value: str, signer: SessionSigner, settings: Settings) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=signer.max_age_s,
        httponly=True,
        secure=settings.session_cookie_secure,
        samesite="strict",
        path="/",
    )


@router.post("/logout", dependencies=[actions.SameOrigin])
def logout(settings: SettingsDep) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        COOKIE, httponly=True, secure=settings.session_cookie_secure, samesite="strict", path="/"
    )
    return response


# -- the dashboard ---------------------------------------------------------------------------


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(
    request: Request,
    principal: PageKey,
    session: SessionDep,
    restorer: RestorerDep,
    settings: SettingsDep,
    queue: QueueDep,
) -> HTMLResponse:
    pending = getattr(queue, "pending", None)
    data = build_dashboard(
        session=session,
        restorer=restorer,
        settings=settings,
        queue_pending=pending if isinstance(pending, int) else None,
    )
    daily = data.storage.daily
    storage_chart = charts.daily_bytes_chart(
        [d.date for d in daily],
        {
            "uploaded": [d.bytes_uploaded for d in daily],
            "stored": [d.bytes_stored for d in daily],
            "restore cache": [d.bytes_cache for d in daily],
        },
        title="Bytes uploaded and kept per capture day",
    )
    quality_chart = charts.dated_lines_chart(
        {
            camera: [(day, edsr) for day, _, edsr, _ in points]
            for camera, points in data.quality_by_day.items()
        },
        title=f"Restored quality on the audit sample ({data.quality.model.name})",
        y_label="PSNR-Y of the restoration (dB)",
        unit="dB",
    )
    return page(
        request,
        "dashboard.html",
        principal=principal,
        data=data,
        storage_chart=storage_chart,
        quality_chart=quality_chart,
        model=restorer,
    )


# -- frames ----------------------------------------------------------------------------------


def _instant(text: str | None, field: str) -> dt.datetime | None:
    """A time from the browser's datetime-local input (read as UTC) or ISO 8601."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"'{field}' is not a date and time (YYYY-MM-DDTHH:MM)") from None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@router.get("/frames", response_class=HTMLResponse)
def frame_browser(
    request: Request,
    principal: PageKey,
    session: SessionDep,
    camera_id: Annotated[str, Query(max_length=128)] = "",
    start: Annotated[str, Query(alias="from", max_length=40)] = "",
    end: Annotated[str, Query(alias="to", max_length=40)] = "",
    cursor: Annotated[str, Query(max_length=512)] = "",
) -> HTMLResponse:
    """Frames in capture order, by camera and capture time (UTC), a page at a time."""
    error, items, next_cursor = None, [], None
    try:
        found, next_cursor = frames.list_frames(
            session=session,
            camera_id=camera_id or None,
            start=_instant(start, "from"),
            end=_instant(end, "to"),
            cursor=cursor or None,
            limit=FRAMES_PER_PAGE,
        )
        items = [FrameRead.of(frame) for frame in found]
    except ValueError as exc:
        error = str(exc)
    except ArchiveError as exc:
        error = exc.message
    cameras = sorted(repository.capture_days_by_camera(session))
    return page(
        request,
        "frames.html",
        principal=principal,
        frames=items,
        cameras=cameras,
        camera_id=camera_id,
        start=start,
        end=end,
        next_cursor=next_cursor,
        error=error,
    )


@router.get("/frames/{frame_id}", response_class=HTMLResponse)
def frame_viewer(
    request: Request,
    frame_id: str,
    principal: PageKey,
    session: SessionDep,
    restorer: RestorerDep,
) -> HTMLResponse:
    """The stored frame, bicubic and the AI restoration side by side (and the HR reference where
    the audit sample kept one), with their provenance."""
    try:
        frame = frames.get_frame(frame_id, session=session)
    except FrameNotFound:
        shown = frame_id if len(frame_id) <= 40 else frame_id[:37] + "..."
        message = f"There is no frame {shown!r}."
        return page(request, "error.html", 404, principal=principal, message=message)
    restorable = can_restore(restorer, frame.degradation_id)
    held = request.query_params.get("held", "")
    return page(
        request,
        "viewer.html",
        principal=principal,
        frame=FrameRead.of(frame),
        original_kept=frame.original_key is not None,
        edsr=provenance_of(frame, Method.edsr, restorer) if restorable else None,
        bicubic=provenance_of(frame, Method.bicubic, restorer),
        model=restorer,
        can_hold=principal.allows(Scope.admin),
        held=held if held.isalnum() and len(held) <= 32 else None,
    )


IMAGE_HEADERS = {"Cache-Control": "private, max-age=300"}


@router.get("/frames/{frame_id}/stored.img")
def stored_image(
    frame_id: str, principal: PageKey, session: SessionDep, store: StoreDep
) -> Response:
    """The frame as stored (audit-logged, as the API's /stored)."""
    frame, data = frames.read_stored(frame_id, session=session, store=store, principal=principal)
    return Response(data, media_type=frame.stored_media_type, headers=IMAGE_HEADERS)


@router.get("/frames/{frame_id}/reference.img")
def reference_image(
    frame_id: str, principal: PageKey, session: SessionDep, store: StoreDep
) -> Response:
    """The HR reference the audit sample kept for this frame (audit-logged)."""
    frame = frames.get_frame(frame_id, session=session)
    if frame.reference_key is None:
        raise FrameNotFound(f"frame {frame.id} kept no full-resolution reference")
    data = store.get(frame.reference_key)
    record_read(principal, "frame.reference.read", frame.id, session=session)
    return Response(data, media_type="image/png", headers=IMAGE_HEADERS)


PENDING_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400" \
viewBox="0 0 400 400"><rect width="400" height="400" fill="#eee"/><text x="200" y="195" \
font-family="sans-serif" font-size="16" text-anchor="middle" fill="#555">Restoring\u2026</text>\
<text x="200" y="220" font-family="sans-serif" font-size="13" text-anchor="middle" \
fill="#777">reload the page in a few seconds</text></svg>"""


@router.get("/frames/{frame_id}/restored.img")
async def restored_image(
    frame_id: str,
    principal: PageKey,
    restore: RestoreDep,
    queue: QueueDep,
    method: Annotated[Method, Query()] = Method.edsr,
) -> Response:
    """The restoration through the API's own path (cache, restore, audit, provenance headers);
    a placeholder while a restore job is still making it."""
    response = await get_restored_frame(
        frame_id, principal, restore, queue, format=OutputFormat.png, method=method, wait=None
    )
    if response.status_code == 202:
        return Response(PENDING_SVG, status_code=202, media_type="image/svg+xml")
    response.headers.update(IMAGE_HEADERS)
    return response


# -- wiring ----------------------------------------------------------------------------------


async def _sign_in_first(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    if request.method != "GET" or request.url.path.endswith(".img"):
        return Response("sign in at /login", status_code=401, media_type="text/plain")
    return RedirectResponse(f"/login?{urlencode({'next': exc.next_path})}", status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    message = "This key lacks the read scope these pages need; sign in with another key."
    return page(request, "error.html", 403, principal=None, message=message)


async def _cross_site(request: Request, exc: Exception) -> Response:
    message = "This form was sent from another site; open the page here and send it again."
    return page(request, "error.html", 403, principal=None, message=message)


def install_pages(app: FastAPI, settings: Settings) -> None:
    """The pages, their sign-in and their error pages."""
    app.state.session_signer = SessionSigner.from_settings(settings)
    app.add_exception_handler(SignInRequired, _sign_in_first)
    app.add_exception_handler(PageForbidden, _forbidden)
    app.add_exception_handler(actions.CrossSiteForm, _cross_site)
    app.include_router(router)
    app.include_router(actions.router)
