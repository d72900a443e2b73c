"""What the viewer's buttons do: place a legal hold on the frame (admin keys) and start an
evidence export (read keys), through the same endpoint functions as POST /v1/holds and
POST /v1/exports, so the rules, the audit log and the answers are theirs; and the export's
state page and download for a signed-in browser, which holds no API key to send."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from app.auth.schemas import Scope
from app.deps import RestoreDep, SessionDep, StoreDep
from app.errors import ArchiveError
from app.lifecycle import endpoints as lifecycle
from app.lifecycle.schemas import ExportCreate, HoldCreate, Part
from app.web.session import PageKey
from app.web.templating import page

router = APIRouter(include_in_schema=False)


class CrossSiteForm(Exception):
    """A form posted from another site (the cookie is SameSite=Strict; this is the second lock)."""


def same_origin(request: Request) -> None:
    """Refuse a POST whose Origin (or Referer) names another host than this one."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source and source != "null" and urlsplit(source).netloc != request.url.netloc:
        raise CrossSiteForm()


SameOrigin = Depends(same_origin)


def _message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "form"
    return f"{field}: {str(first.get('msg', 'invalid'))[:200]}"


@router.post("/frames/{frame_id}/hold", dependencies=[SameOrigin])
def hold_frame(
    request: Request,
    frame_id: str,
    principal: PageKey,
    session: SessionDep,
    case_reference: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Place a legal hold on this frame (POST /v1/holds with its id); admin keys only."""
    if not principal.allows(Scope.admin):
        return page(
            request,
            "error.html",
            403,
            principal=principal,
            message=("Placing a legal hold needs an admin key."),
        )
    try:
        selection = HoldCreate(
            frame_ids=[frame_id], case_reference=case_reference.strip(), reason=reason.strip()
        )
        hold = lifecycle.place_hold(selection, principal, session, Response())
    except ValidationError as exc:
        return page(request, "error.html", 422, principal=principal, message=_message(exc))
    except ArchiveError as exc:
        return page(
            request, "error.html", exc.status_code, principal=principal, message=exc.message
        )
    return RedirectResponse(f"/frames/{frame_id}?held={hold.id}", status_code=303)


@router.post("/frames/{frame_id}/export", dependencies=[SameOrigin])
async def export_frame(
    request: Request,
    frame_id: str,
    principal: PageKey,
    restore: RestoreDep,
    runner: lifecycle.ExportsDep,
) -> Response:
    """Start an evidence export of this frame (POST /v1/exports with its id): the stored frame,
    the original where kept, the AI restoration and bicubic."""
    include = [Part.stored, Part.original, Part.restored, Part.bicubic]
    try:
        view = await lifecycle.create_export(
            ExportCreate(frame_ids=[frame_id], include=include),
            principal,
            restore,
            runner,
            Response(),
        )
    except ArchiveError as exc:
        return page(
            request, "error.html", exc.status_code, principal=principal, message=exc.message
        )
    return RedirectResponse(f"/exports/{view.id}", status_code=303)


@router.get("/exports/{export_id}", response_class=HTMLResponse)
def export_page(
    request: Request, export_id: str, principal: PageKey, restore: RestoreDep
) -> HTMLResponse:
    """An export's state; its download once done."""
    try:
        export = lifecycle.get_export(export_id, principal, restore)
    except ArchiveError as exc:
        return page(
            request, "error.html", exc.status_code, principal=principal, message=exc.message
        )
    return page(request, "export.html", principal=principal, export=export)


@router.get("/exports/{export_id}/download")
def export_download(export_id: str, principal: PageKey, restore: RestoreDep) -> Response:
    """The signed bundle (GET /v1/exports/{id}/download; audit-logged)."""
    return lifecycle.download_export(export_id, principal, restore)


@router.get("/frames/{frame_id}/original.img")
def original_image(
    frame_id: str, principal: PageKey, session: SessionDep, store: StoreDep
) -> Response:
    """The upload itself while it is kept (GET /v1/frames/{id}/original; audit-logged)."""
    return lifecycle.get_original(frame_id, principal, session, store)
