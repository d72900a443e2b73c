"""Lifecycle endpoints: cameras and their policies, legal holds, kept originals, evidence
exports, the signing key and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from app.deps import AdminKey, ReadKey, RestoreDep, RuntimeDep, SessionDep, SettingsDep, StoreDep
from app.frames.schemas import Instant
from app.lifecycle import exports, holds, service
from app.lifecycle.exports import ExportRunner
from app.lifecycle.schemas import (
    AuditPage,
    CameraRead,
    ExportCreate,
    ExportRead,
    HoldCreate,
    HoldList,
    HoldRead,
    PolicyRead,
    PolicyUpdate,
    SigningKeyRead,
)
from app.lifecycle.signing import ALGORITHM, fingerprint, public_pem

router = APIRouter(tags=["lifecycle"])

ERRORS = {
    401: {"description": "missing or unknown API key"},
    403: {"description": "the key lacks the scope"},
}
CAMERA_PATH = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


def _exports(runtime: RuntimeDep) -> ExportRunner:
    return runtime.exports


ExportsDep = Annotated[ExportRunner, Depends(_exports)]


# -- cameras --------------------------------------------------------------------------------


@router.get("/v1/cameras", responses=ERRORS)
def list_cameras(
    principal: ReadKey, session: SessionDep, settings: SettingsDep
) -> list[CameraRead]:
    """Every camera with frames or a policy: the policy in force (its overrides over
    CCTV_RETENTION_DAYS and CCTV_ORIGINALS_HOURS), its usage and the storage it settles at."""
    return service.list_cameras(session=session, settings=settings)


@router.put("/v1/cameras/{camera_id}/policy", responses=ERRORS)
def set_camera_policy(
    camera_id: Annotated[str, Path(pattern=CAMERA_PATH, max_length=128)],
    update: PolicyUpdate,
    principal: AdminKey,
    session: SessionDep,
) -> PolicyRead:
    """Replace a camera's overrides (null or left out: the archive's default); audit-logged.
    The next retention run applies it."""
    return service.set_policy(camera_id, update, session=session, principal=principal)


# -- legal holds ----------------------------------------------------------------------------


@router.post(
    "/v1/holds",
    status_code=201,
    responses={404: {"description": "unknown frames or camera"}, **ERRORS},
)
def place_hold(
    request: HoldCreate, principal: AdminKey, session: SessionDep, response: Response
) -> HoldRead:
    """Hold frames (by id, or a camera and capture-time range, which also covers frames
    uploaded later) against every deletion, with a case reference and a reason."""
    hold = holds.place_hold(request, session=session, principal=principal)
    response.headers["Location"] = f"/v1/holds/{hold.id}"
    return hold


@router.get("/v1/holds", responses=ERRORS, response_model_by_alias=True)
def list_holds(
    principal: ReadKey,
    session: SessionDep,
    active: Annotated[bool, Query(description="only holds not released")] = True,
) -> HoldList:
    return HoldList(items=holds.list_holds(session=session, active_only=active))


@router.get("/v1/holds/{hold_id}", responses={404: {"description": "unknown hold"}, **ERRORS})
def get_hold(hold_id: str, principal: ReadKey, session: SessionDep) -> HoldRead:
    return holds.get_hold(hold_id, session=session)


@router.delete(
    "/v1/holds/{hold_id}",
    responses={404: {"description": "unknown hold"}, 409: {"description": "released"}, **ERRORS},
)
def release_hold(
    hold_id: str,
    principal: AdminKey,
    session: SessionDep,
    reason: Annotated[str, Query(min_length=1, max_length=500, description="why released")],
) -> HoldRead:
    """Release a hold; its frames fall under retention again. Audit-logged with the reason."""
    return holds.release_hold(hold_id, reason, session=session, principal=principal)


# -- originals ------------------------------------------------------------------------------


@router.get(
    "/v1/frames/{frame_id}/original",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}}},
        404: {"description": "unknown frame, or its original is not kept"},
        **ERRORS,
    },
)
def get_original(
    frame_id: str, principal: ReadKey, session: SessionDep, store: StoreDep
) -> Response:
    """The bytes the camera uploaded, unchanged, while they are kept (the originals window or a
    legal hold); the read is audit-logged."""
    frame, data = service.read_original(frame_id, session=session, store=store, principal=principal)
    extension = frame.original_format.replace("jpeg", "jpg")
    return Response(
        data,
        media_type=f"image/{frame.original_format}",
        headers={
            "ETag": f'"{frame.original_sha256}"',
            "Content-Disposition": f'inline; filename="{frame.id}-original.{extension}"',
            "X-Source-Frame-Id": frame.id,
            "X-Source-Frame-SHA256": frame.original_sha256,
        },
    )


# -- exports --------------------------------------------------------------------------------


@router.post(
    "/v1/exports",
    status_code=202,
    responses={
        404: {"description": "unknown frames or camera, or no frames in the range"},
        409: {"description": "the model was not trained for how a frame is stored"},
        422: {"description": "more frames than CCTV_EXPORT_MAX_FRAMES, or a bad selection"},
        **ERRORS,
    },
)
async def create_export(
    request: ExportCreate,
    principal: ReadKey,
    restore: RestoreDep,
    runner: ExportsDep,
    response: Response,
) -> ExportRead:
    """Accept an evidence export (202 with its URL); it is built in the background."""
    export = await run_in_threadpool(
        exports.create_export, request, principal=principal, context=restore
    )
    runner.submit(export.id)  # after the commit: the builder reads the committed row
    view = ExportRead.of(export, restore.settings.export_ttl_days)
    response.headers["Location"] = view.links.self
    return view


@router.get("/v1/exports/{export_id}", responses={404: {"description": "unknown"}, **ERRORS})
def get_export(export_id: str, principal: ReadKey, restore: RestoreDep) -> ExportRead:
    export = exports.get_export(export_id, context=restore)
    return ExportRead.of(export, restore.settings.export_ttl_days)


@router.get(
    "/v1/exports/{export_id}/download",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}},
        404: {"description": "unknown export"},
        409: {"description": "not done (still building, or failed)"},
        410: {"description": "expired: the bundle was deleted after CCTV_EXPORT_TTL_DAYS"},
        **ERRORS,
    },
)
def download_export(export_id: str, principal: ReadKey, restore: RestoreDep) -> Response:
    """The signed bundle, once done; the download is audit-logged."""
    export, data = exports.download(export_id, principal=principal, context=restore)
    return Response(
        data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="evidence-{export.id}.zip"',
            "X-Export-SHA256": export.sha256 or "",
        },
    )


@router.get("/v1/signing-key")
def signing_key(runtime: RuntimeDep) -> SigningKeyRead:
    """The public key export manifests are signed with (public: recipients need no API key)."""
    key = runtime.exports.signer.public_key
    return SigningKeyRead(
        algorithm=ALGORITHM,
        public_key_pem=public_pem(key).decode(),
        fingerprint_sha256=fingerprint(key),
    )


# -- audit ----------------------------------------------------------------------------------


@router.get("/v1/audit", responses=ERRORS)
def audit_log(
    principal: AdminKey,
    session: SessionDep,
    frame_id: Annotated[str | None, Query(max_length=64)] = None,
    key: Annotated[str | None, Query(max_length=64, description="API key name")] = None,
    action: Annotated[str | None, Query(max_length=32)] = None,
    start: Annotated[Instant | None, Query(alias="from")] = None,
    end: Annotated[Instant | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """The audit log in append order (who, what, when, from where), filtered and paginated."""
    return service.audit_page(
        session=session,
        frame_id=frame_id,
        key_name=key,
        action=action,
        start=start,
        end=end,
        cursor=cursor,
        limit=limit,
    )
