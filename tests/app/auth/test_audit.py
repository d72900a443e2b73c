"""Every read of a stored or restored frame is written to the append-only audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.auth.repository import audit_entries
from tests.app.conftest import Archive, GatedRestorer


def entries(archive: Archive, frame_id: str) -> list[tuple[str, str, str]]:
    with archive.runtime.session_factory() as session:
        return [(e.key_name, e.action, e.detail) for e in audit_entries(session, frame_id=frame_id)]


def test_stored_and_restored_reads_are_logged_with_who_what_when(archive: Archive) -> None:
    frame_id = archive.frame_id()
    before = datetime.now(UTC)
    archive.get(f"/v1/frames/{frame_id}/stored", key="investigator")
    archive.get(f"/v1/frames/{frame_id}/restored", key="admin", params={"format": "webp"})
    cached = archive.get(f"/v1/frames/{frame_id}/restored", key="admin", params={"format": "webp"})
    archive.get(f"/v1/frames/{frame_id}/restored", key="investigator", params={"method": "bicubic"})

    assert cached.status_code == 200
    assert entries(archive, frame_id) == [
        ("investigator", "frame.stored.read", ""),
        ("admin", "frame.restored.read", "method=edsr format=webp"),  # restored now
        ("admin", "frame.restored.read", "method=edsr format=webp"),  # from the cache
        ("investigator", "frame.restored.read", "method=bicubic format=png"),
    ]
    with archive.runtime.session_factory() as session:
        times = [e.at for e in audit_entries(session, frame_id=frame_id)]
    assert all(before - timedelta(seconds=1) <= t <= datetime.now(UTC) for t in times)


def test_metadata_and_refused_reads_are_not_frame_reads(archive: Archive) -> None:
    frame_id = archive.frame_id()
    archive.get(f"/v1/frames/{frame_id}")
    archive.get(f"/v1/frames/{frame_id}/stored", key="camera")  # 403
    assert entries(archive, frame_id) == []


def test_a_202_is_not_logged_as_a_read(gated_archive: Archive, gated: GatedRestorer) -> None:
    frame_id = gated_archive.frame_id()
    response = gated_archive.get(f"/v1/frames/{frame_id}/restored", params={"wait": 0})
    assert response.status_code == 202
    assert entries(gated_archive, frame_id) == []


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET key_name = 'someone else'", "DELETE FROM audit_log"]
)
def test_the_database_refuses_to_change_the_audit_log(archive: Archive, statement: str) -> None:
    frame_id = archive.frame_id()
    archive.get(f"/v1/frames/{frame_id}/stored")
    engine = archive.runtime.engine
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as connection:
        connection.execute(sa.text(statement))
    assert len(entries(archive, frame_id)) == 1
