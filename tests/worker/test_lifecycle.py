"""The periodic retention task of scaled-out deployments: scheduled by beat on the restore
queue, and it deletes what the embedded server's housekeeping would."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import migrate
from app.config import get_settings
from app.db import make_engine, make_session_factory, unit_of_work
from app.frames.service import Upload, ingest_frame
from app.storage import build_store
from models import Profile
from tests.app.images import image_bytes
from worker import tasks
from worker.celery_app import LIFECYCLE_TASK, celery_app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CCTV_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CCTV_PROFILE", "400:2:png")
    monkeypatch.setenv("CCTV_RETENTION_DAYS", "30")
    monkeypatch.setenv("CCTV_AUDIT_SAMPLE_RATE", "0")
    monkeypatch.delenv("CCTV_DATABASE_URL", raising=False)
    monkeypatch.delenv("CCTV_STORAGE_URL", raising=False)
    get_settings.cache_clear()
    migrate.upgrade(get_settings().database_url)
    yield
    get_settings.cache_clear()


def test_beat_schedules_the_sweep_on_the_restore_queue() -> None:
    entry = celery_app.conf.beat_schedule["lifecycle-sweep"]
    assert entry["task"] == LIFECYCLE_TASK
    assert LIFECYCLE_TASK in celery_app.tasks  # registered by worker.tasks
    assert entry["options"]["queue"] == get_settings().restore_queue


def test_the_task_deletes_expired_frames_and_their_blobs(env: None) -> None:
    settings = get_settings()
    store = build_store(settings)
    ids = []
    for seed, days in ((1, 45), (2, 3)):
        with unit_of_work(make_session_factory(settings)) as session:
            captured = datetime.now(UTC) - timedelta(days=days)
            upload = Upload(image_bytes(seed=seed), "cam-1", captured, [])
            frame = ingest_frame(
                upload,
                session=session,
                store=store,
                profile=Profile.parse(settings.profile),
                settings=settings,
            ).frame
            ids.append(frame.id)

    result = tasks.lifecycle_sweep.apply().get()

    assert result == {"frames": 1, "originals": 0}
    engine = make_engine(settings.database_url)
    with engine.connect() as connection:
        assert list(connection.execute(sa.text("SELECT id FROM frames")).scalars()) == [ids[1]]
    engine.dispose()
    assert [key for key in store.keys("frames/") if ids[0] in key] == []
