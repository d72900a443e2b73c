"""Legal holds: placed on listed frames or on a camera and capture-time range, released with a
reason. A held frame is never deleted by retention, quota or purge, and keeps its original."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from app.auth.schemas import Principal
from app.auth.service import record_event
from app.db import utcnow
from app.errors import FrameNotFound, InvalidInput
from app.frames import repository as frames_repository
from app.lifecycle import repository
from app.lifecycle.errors import CameraNotFound, HoldNotFound, HoldReleased
from app.lifecycle.models import LegalHold, LegalHoldFrame
from app.lifecycle.schemas import HoldCreate, HoldRead, Selection


def check_frames(session: Session, frame_ids: list[str]) -> None:
    """FrameNotFound naming the unknown ids (the first few)."""
    known = frames_repository.by_ids(session, frame_ids)
    missing = [fid for fid in frame_ids if fid not in known]
    if missing:
        shown = ", ".join(repr(fid[:40]) for fid in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise FrameNotFound(f"unknown frames: {shown}{more}")


def check_selection(session: Session, selection: Selection) -> None:
    if selection.frame_ids is not None:
        check_frames(session, list(dict.fromkeys(selection.frame_ids)))
    elif selection.camera_id is not None and not repository.camera_known(
        session, selection.camera_id
    ):
        raise CameraNotFound(f"unknown camera {selection.camera_id!r} (no frames, no policy)")


def _view(session: Session, hold: LegalHold) -> HoldRead:
    named = repository.hold_frame_ids(session, hold.id) if hold.camera_id is None else None
    return HoldRead.of(hold, named, repository.frames_in_hold(session, hold))


def place_hold(request: HoldCreate, *, session: Session, principal: Principal) -> HoldRead:
    """Place a hold (committed with the request); every change is in the audit log."""
    repository.lock(session)  # a sweep choosing frames now sees this hold, or finished first
    check_selection(session, request)
    hold = LegalHold(
        id=uuid.uuid4().hex,
        case_reference=request.case_reference,
        reason=request.reason,
        camera_id=request.camera_id,
        start=request.start,
        end=request.end,
        created_by=principal.name,
        created_at=utcnow(),
    )
    session.add(hold)
    session.flush()
    frame_ids = list(dict.fromkeys(request.frame_ids or []))
    session.add_all(LegalHoldFrame(hold_id=hold.id, frame_id=fid) for fid in frame_ids)
    session.flush()
    what = (
        f"{len(frame_ids)} frames"
        if request.camera_id is None
        else f"camera {request.camera_id} [{_moment(request.start)}, {_moment(request.end)})"
    )
    detail = f"hold {hold.id} case {request.case_reference!r}: {what}; reason: {request.reason}"
    _audit(session, principal, "hold.create", None, detail)
    for fid in frame_ids:
        _audit(session, principal, "hold.create", fid, f"hold {hold.id}")
    return _view(session, hold)


def release_hold(hold_id: str, reason: str, *, session: Session, principal: Principal) -> HoldRead:
    if not reason.strip():
        raise InvalidInput("give the reason the hold is released (?reason=...)")
    repository.lock(session)
    hold = repository.get_hold(session, hold_id)
    if hold is None:
        raise HoldNotFound(f"no legal hold {hold_id[:40]!r}")
    if hold.released_at is not None:
        raise HoldReleased(f"legal hold {hold_id} was already released at {hold.released_at}")
    hold.released_at = utcnow()
    hold.released_by = principal.name
    hold.release_reason = reason
    session.flush()
    detail = f"hold {hold.id} case {hold.case_reference!r} released; reason: {reason}"
    _audit(session, principal, "hold.release", None, detail)
    for fid in repository.hold_frame_ids(session, hold.id):
        _audit(session, principal, "hold.release", fid, f"hold {hold.id}")
    return _view(session, hold)


def list_holds(*, session: Session, active_only: bool) -> list[HoldRead]:
    return [_view(session, hold) for hold in repository.holds(session, active_only=active_only)]


def get_hold(hold_id: str, *, session: Session) -> HoldRead:
    hold = repository.get_hold(session, hold_id)
    if hold is None:
        raise HoldNotFound(f"no legal hold {hold_id[:40]!r}")
    return _view(session, hold)


def _moment(moment: object) -> str:
    return moment.isoformat() if moment is not None else "open"  # type: ignore[attr-defined]


def _audit(
    session: Session, principal: Principal, action: str, frame_id: str | None, detail: str
) -> None:
    record_event(
        principal.name,
        action,
        frame_id,
        session=session,
        detail=detail,
        client_address=principal.client_address,
    )
