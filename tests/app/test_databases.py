"""The same migrations and the same database rules on SQLite (embedded) and PostgreSQL (scaled out).

Each test runs twice: on a fresh SQLite file and on a fresh PostgreSQL database of its own.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.orm import Session, sessionmaker

from app import migrate
from app.db import make_engine
from app.frames import repository as frames_repository
from app.frames.models import Frame
from app.restorations import repository as restorations_repository
from app.restorations.models import CachedRestoration, RestoreJob, RestoreJobItem
from app.stats import repository as stats_repository
from app.stats.models import FrameQuality
from app.tables import metadata


def _frame(frame_id: str, *, camera: str = "cam-1", sha: str = "a" * 64) -> Frame:
    now = datetime.now(UTC)
    return Frame(
        id=frame_id,
        camera_id=camera,
        captured_at=now,
        created_at=now,
        tags=["gate", "night"],
        original_sha256=sha,
        original_format="png",
        original_bytes=480_000,
        original_width=400,
        original_height=400,
        stored_key=f"frames/{camera}/{frame_id}.webp",
        stored_codec="webp-lossless",
        stored_media_type="image/webp",
        stored_sha256="b" * 64,
        stored_bytes=60_000,
        stored_width=200,
        stored_height=200,
        scale=2,
        degradation_id="bicubic-aa-x2/webp-lossless/v1",
        reference_bytes=0,
    )


def test_migrations_build_exactly_the_schema_of_the_models(database_url: str) -> None:
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert diff == [], f"migrations and models disagree on {engine.dialect.name}: {diff}"
    assert migrate.is_current(database_url)


def test_migrating_twice_is_harmless(database_url: str) -> None:
    migrate.upgrade(database_url)
    migrate.upgrade(database_url)
    assert migrate.is_current(database_url)


def test_one_camera_never_stores_the_same_original_twice(
    migrated: sessionmaker[Session],
) -> None:
    with migrated() as session:
        session.add(_frame("f1"))
        session.commit()
    with migrated() as session:
        session.add(_frame("f2"))  # same camera, same original SHA-256
        with pytest.raises(sa.exc.IntegrityError):
            session.commit()
    with migrated() as session:
        session.add(_frame("f3", camera="cam-2"))  # another camera may hold the same bytes
        session.commit()
        assert session.scalar(sa.select(sa.func.count()).select_from(Frame)) == 2


def test_times_come_back_as_the_same_instant_in_utc(migrated: sessionmaker[Session]) -> None:
    local = datetime(2024, 3, 31, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    frame = _frame("f1")
    frame.captured_at = local
    with migrated() as session:
        session.add(frame)
        session.commit()
    with migrated() as session:
        loaded = session.get(Frame, "f1")
        assert loaded is not None
        assert loaded.captured_at == local
        assert loaded.captured_at.tzinfo == UTC
        assert loaded.tags == ["gate", "night"]


def test_job_items_must_point_at_real_frames(migrated: sessionmaker[Session]) -> None:
    now = datetime.now(UTC)
    job = RestoreJob(
        id="j1",
        state="queued",
        method="edsr",
        format="png",
        requested_by="key-1",
        created_at=now,
        updated_at=now,
        attempts=0,
    )
    with migrated() as session:
        session.add(job)
        session.commit()
    with migrated() as session:
        session.add(RestoreJobItem(job_id="j1", frame_id="missing", position=0, state="pending"))
        with pytest.raises(sa.exc.IntegrityError):
            session.commit()


# -- the repositories, on both databases ----------------------------------------------------


def _values(row: object) -> dict[str, object]:
    table = type(row).__table__  # type: ignore[attr-defined]
    return {column.key: getattr(row, column.key) for column in table.columns}


def test_frame_insert_if_absent_returns_the_frame_it_inserted(
    migrated: sessionmaker[Session],
) -> None:
    with migrated() as session:
        frame = frames_repository.insert_if_absent(session, _values(_frame("f1")))
        assert frame is not None
        assert (frame.id, frame.camera_id, frame.tags) == ("f1", "cam-1", ["gate", "night"])
        session.commit()
    with migrated() as session:
        again = _values(_frame("f2"))  # the same camera and original: a racing repeat upload
        assert frames_repository.insert_if_absent(session, again) is None
        session.commit()
        assert session.scalar(sa.select(sa.func.count()).select_from(Frame)) == 1


def test_cache_insert_if_absent_tells_whether_it_inserted(
    migrated: sessionmaker[Session],
) -> None:
    now = datetime.now(UTC)
    entry = {
        "frame_id": "f1",
        "method": "edsr",
        "format": "png",
        "model_name": "tiny",
        "weights_sha256": "c" * 64,
        "media_type": "image/png",
        "bytes": 1000,
        "created_at": now,
        "expires_at": now + timedelta(days=1),
    }
    with migrated() as session:
        session.add(_frame("f1"))
        session.commit()
    with migrated() as session:
        added = restorations_repository.insert_cache_if_absent(
            session, entry | {"blob_key": "restored/a.png"}
        )
        assert added is True
        session.commit()
    with migrated() as session:
        # The same restoration finished twice at once: the second must learn it lost.
        added = restorations_repository.insert_cache_if_absent(
            session, entry | {"blob_key": "restored/b.png"}
        )
        assert added is False
        session.commit()
        keys = session.scalars(sa.select(CachedRestoration.blob_key)).all()
        assert keys == ["restored/a.png"]


def test_frame_pages_follow_capture_time_then_id(migrated: sessionmaker[Session]) -> None:
    start = datetime(2024, 5, 1, tzinfo=UTC)
    with migrated() as session:
        for i in range(5):
            frame = _frame(f"f{i}", sha=f"{i:064d}")
            frame.captured_at = start + timedelta(minutes=i // 2)  # pairs share a time
            session.add(frame)
        session.commit()
    with migrated() as session:
        seen: list[str] = []
        after = None
        while True:
            page = frames_repository.page(
                session, camera_id="cam-1", start=start, end=None, after=after, limit=2
            )
            if not page:
                break
            seen += [frame.id for frame in page]
            after = (page[-1].captured_at, page[-1].id)
        assert seen == ["f0", "f1", "f2", "f3", "f4"]
        in_range = frames_repository.ids_in_range(
            session,
            camera_id="cam-1",
            start=start + timedelta(minutes=1),
            end=start + timedelta(minutes=2),
            limit=10,
        )
        assert in_range == ["f2", "f3"]


def _quality(frame_id: str, psnr: float) -> FrameQuality:
    return FrameQuality(
        frame_id=frame_id,
        weights_sha256="c" * 64,
        model_name="tiny",
        psnr_y_edsr=psnr,
        psnr_y_bicubic=28.0,
        measured_at=datetime.now(UTC),
    )


def test_two_processes_measuring_one_frame_at_once_both_succeed(
    migrated: sessionmaker[Session],
) -> None:
    """`serve --workers 2`: both processes' housekeeping measures the same audit frame; the
    second write waits on the first and replaces it instead of failing on the primary key."""
    with migrated.begin() as session:
        session.add(_frame("f1"))
    first = migrated()
    stats_repository.save_quality(first, _quality("f1", 30.0))  # holds the row, not committed
    failures: list[BaseException] = []

    def second() -> None:
        try:
            with migrated.begin() as session:
                stats_repository.save_quality(session, _quality("f1", 31.0))
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)  # the second is waiting on the first's write
    first.commit()
    first.close()
    thread.join(30)

    assert not failures
    with migrated() as session:
        rows = session.scalars(sa.select(FrameQuality)).all()
        assert [(row.frame_id, row.psnr_y_edsr) for row in rows] == [("f1", 31.0)]
