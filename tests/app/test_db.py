"""SQLite in WAL mode with a busy timeout; the unit of work commits once or rolls back."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db import (
    SQLITE_BUSY_TIMEOUT_MS,
    UTCDateTime,
    make_engine,
    make_session_factory,
    on_commit,
    on_rollback,
    unit_of_work,
)


def test_sqlite_connections_use_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'a.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_unit_of_work_commits_and_runs_commit_hooks(tmp_path: Path) -> None:
    factory = make_session_factory(engine=make_engine(f"sqlite:///{tmp_path / 'a.db'}"))
    events: list[str] = []
    with unit_of_work(factory) as session:
        session.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        session.execute(sa.text("INSERT INTO t VALUES (1)"))
        on_commit(session, lambda: events.append("committed"))
        on_rollback(session, lambda: events.append("rolled back"))
    with factory() as session:
        assert session.execute(sa.text("SELECT count(*) FROM t")).scalar() == 1
    assert events == ["committed"]


def test_unit_of_work_rolls_back_and_runs_rollback_hooks(tmp_path: Path) -> None:
    factory = make_session_factory(engine=make_engine(f"sqlite:///{tmp_path / 'a.db'}"))
    with unit_of_work(factory) as session:
        session.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    events: list[str] = []
    with pytest.raises(KeyError), unit_of_work(factory) as session:
        session.execute(sa.text("INSERT INTO t VALUES (1)"))
        on_rollback(session, lambda: events.append("blob deleted"))
        on_commit(session, lambda: events.append("never"))
        raise KeyError("request failed")
    with factory() as session:
        assert session.execute(sa.text("SELECT count(*) FROM t")).scalar() == 0
    assert events == ["blob deleted"]


def test_utc_datetime_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2024, 5, 1), sa.engine.default.DefaultDialect())
