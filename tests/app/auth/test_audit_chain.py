"""The audit log refuses REPLACE as well as UPDATE and DELETE, and its hash chain shows an edited,
removed or reordered row even when the database's guards are bypassed (dropped here).

Each test runs on a fresh SQLite file and on a fresh PostgreSQL database. Expected hashes are
computed here from the rule (SHA-256 of the previous hash + the row's JSON), not by the code."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app import migrate
from app.auth.audit import GENESIS, verify_audit_chain
from app.auth.schemas import Principal, Scope
from app.auth.service import record_read
from app.db import make_engine, make_session_factory, unit_of_work

INVESTIGATOR = Principal(key_id=1, name="investigator", scopes=frozenset({Scope.read}))


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: sa.Engine) -> sessionmaker[Session]:
    return make_session_factory(engine=engine)


def read_frames(sessions: sessionmaker[Session], count: int) -> None:
    for i in range(count):
        with unit_of_work(sessions) as session:
            record_read(INVESTIGATOR, "frame.stored.read", f"{i:032x}", session=session)


def rows(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text("SELECT * FROM audit_log ORDER BY id")))


def reference_hash(prev: str, row: sa.Row) -> str:
    at = row.at if isinstance(row.at, datetime) else datetime.fromisoformat(row.at)
    content = json.dumps(
        [at.strftime("%Y-%m-%dT%H:%M:%S.%f"), row.key_name, row.action, row.frame_id, row.detail],
        separators=(",", ":"),
    )
    return hashlib.sha256((prev + content).encode()).hexdigest()


def drop_guards(engine: sa.Engine) -> None:
    """What someone with the database's own credentials can do."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            for name in ("update", "delete", "replace"):
                connection.execute(sa.text(f"DROP TRIGGER audit_log_no_{name}"))
        else:
            connection.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER USER"))


def execute(engine: sa.Engine, statement: str, **params: object) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text(statement), params)


def verify(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return verify_audit_chain(session).problems


def test_reads_are_chained_by_hash_from_the_genesis(
    engine: sa.Engine, sessions: sessionmaker[Session]
) -> None:
    read_frames(sessions, 4)
    prev = GENESIS
    for row in rows(engine):
        assert row.prev_hash == prev
        assert row.row_hash == reference_hash(prev, row)
        prev = row.row_hash
    with sessions() as session:
        report = verify_audit_chain(session, batch=3)  # crosses a batch boundary
    assert report.ok and report.rows == 4 and report.head == prev


def test_an_empty_log_verifies(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        report = verify_audit_chain(session)
    assert (report.ok, report.rows, report.head) == (True, 0, GENESIS)


def test_the_database_refuses_to_replace_a_row(
    engine: sa.Engine, sessions: sessionmaker[Session]
) -> None:
    read_frames(sessions, 2)
    first = rows(engine)[0]
    if engine.dialect.name == "sqlite":
        statements = [
            "INSERT OR REPLACE INTO audit_log (id, at, key_name, action, frame_id, detail, "
            "prev_hash, row_hash) VALUES (:id, :at, 'someone else', :action, :frame_id, '', "
            ":prev_hash, :row_hash)",
            "REPLACE INTO audit_log (id, at, key_name, action, frame_id, detail, prev_hash, "
            "row_hash) VALUES (99, :at, 'x', :action, :frame_id, '', :prev_hash, 'f')",
        ]
    else:
        statements = [
            "INSERT INTO audit_log (id, at, key_name, action, frame_id, detail, prev_hash, "
            "row_hash) VALUES (:id, :at, 'someone else', :action, :frame_id, '', :prev_hash, "
            ":row_hash) ON CONFLICT (id) DO UPDATE SET key_name = EXCLUDED.key_name",
            "MERGE INTO audit_log AS a USING (SELECT :id AS id) AS s ON a.id = s.id "
            "WHEN MATCHED THEN UPDATE SET key_name = 'someone else'",
            "MERGE INTO audit_log AS a USING (SELECT :id AS id) AS s ON a.id = s.id "
            "WHEN MATCHED THEN DELETE",
        ]
    for statement in statements:
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            execute(engine, statement, **first._asdict())
    assert rows(engine) == [first, rows(engine)[1]] and rows(engine)[0].key_name == "investigator"
    assert verify(sessions) == []


def test_an_edited_row_is_found(engine: sa.Engine, sessions: sessionmaker[Session]) -> None:
    read_frames(sessions, 3)
    drop_guards(engine)
    second = rows(engine)[1]
    execute(engine, "UPDATE audit_log SET key_name = 'someone else' WHERE id = :id", id=second.id)
    assert verify(sessions) == [f"row {second.id}: content does not match its hash (edited)"]


def test_an_edited_time_is_found(engine: sa.Engine, sessions: sessionmaker[Session]) -> None:
    read_frames(sessions, 2)
    drop_guards(engine)
    first = rows(engine)[0]
    at = first.at if isinstance(first.at, datetime) else datetime.fromisoformat(first.at)
    execute(
        engine,
        "UPDATE audit_log SET at = :at WHERE id = :id",
        at=at - timedelta(microseconds=1),
        id=first.id,
    )
    assert verify(sessions) == [f"row {first.id}: content does not match its hash (edited)"]


def test_a_removed_row_is_found(engine: sa.Engine, sessions: sessionmaker[Session]) -> None:
    read_frames(sessions, 4)
    drop_guards(engine)
    ids = [row.id for row in rows(engine)]
    execute(engine, "DELETE FROM audit_log WHERE id = :id", id=ids[1])
    assert verify(sessions) == [
        f"row {ids[2]}: does not follow row {ids[0]} (a row was removed, inserted or reordered)"
    ]


def test_removing_the_first_row_is_found(
    engine: sa.Engine, sessions: sessionmaker[Session]
) -> None:
    read_frames(sessions, 2)
    drop_guards(engine)
    ids = [row.id for row in rows(engine)]
    execute(engine, "DELETE FROM audit_log WHERE id = :id", id=ids[0])
    assert verify(sessions) == [
        f"row {ids[1]}: does not follow the start (a row was removed, inserted or reordered)"
    ]


def test_reordered_rows_are_found(engine: sa.Engine, sessions: sessionmaker[Session]) -> None:
    read_frames(sessions, 4)
    drop_guards(engine)
    ids = [row.id for row in rows(engine)]
    # Swap rows 2 and 3 by their ids (through a free id), each row's content and hashes intact.
    for old, new in ((ids[1], -1), (ids[2], ids[1]), (-1, ids[2])):
        execute(engine, "UPDATE audit_log SET id = :new WHERE id = :old", old=old, new=new)
    problems = verify(sessions)
    assert problems and all("does not follow" in problem for problem in problems)
    assert not any("edited" in problem for problem in problems)


def test_a_replaced_row_is_found_when_the_guards_are_dropped(
    engine: sa.Engine, sessions: sessionmaker[Session]
) -> None:
    read_frames(sessions, 3)
    drop_guards(engine)
    second = rows(engine)[1]
    execute(engine, "DELETE FROM audit_log WHERE id = :id", id=second.id)
    forged = second._asdict() | {"key_name": "someone else"}
    execute(
        engine,
        "INSERT INTO audit_log (id, at, key_name, action, frame_id, detail, prev_hash, row_hash) "
        "VALUES (:id, :at, :key_name, :action, :frame_id, :detail, :prev_hash, :row_hash)",
        **forged,
    )
    assert verify(sessions) == [f"row {second.id}: content does not match its hash (edited)"]


def test_migration_chains_the_rows_written_before_it(database_url: str) -> None:
    migrate.upgrade(database_url, "0003")
    engine = make_engine(database_url)
    at = datetime(2026, 11, 1, 12, 0, 0, 123456)
    for i in range(3):
        execute(
            engine,
            "INSERT INTO audit_log (at, key_name, action, frame_id, detail) "
            "VALUES (:at, 'investigator', 'frame.stored.read', :frame_id, '')",
            at=at + timedelta(seconds=i),
            frame_id=f"{i:032x}",
        )
    migrate.upgrade(database_url)
    prev = GENESIS
    for row in rows(engine):
        assert (row.prev_hash, row.row_hash) == (prev, reference_hash(prev, row))
        prev = row.row_hash
    sessions = make_session_factory(engine=engine)
    read_frames(sessions, 1)  # new rows follow the backfilled ones
    assert verify(sessions) == []
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        execute(engine, "DELETE FROM audit_log")
    engine.dispose()


def test_times_are_hashed_in_utc_to_the_microsecond() -> None:
    from app.auth.audit import canonical

    instant = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    plus_two = instant.astimezone(timezone(timedelta(hours=2)))
    naive_utc = datetime(2026, 1, 2, 3, 4, 5, 6)  # as the database gives it back
    assert json.loads(canonical(instant, "k", "a", None, ""))[0] == "2026-01-02T03:04:05.000006"
    assert canonical(instant, "k", "a", None, "") == canonical(plus_two, "k", "a", None, "")
    assert canonical(instant, "k", "a", None, "") == canonical(naive_utc, "k", "a", None, "")


def test_audit_verify_command_prints_one_line_per_problem_and_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app import cli
    from app.config import get_settings

    monkeypatch.setenv("CCTV_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CCTV_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        url = get_settings().database_url
        migrate.upgrade(url)
        engine = make_engine(url)
        read_frames(make_session_factory(engine=engine), 4)

        assert cli.main(["audit", "verify"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out == [f"audit log: 4 rows, chain intact; head {rows(engine)[-1].row_hash}"]

        drop_guards(engine)
        ids = [row.id for row in rows(engine)]
        execute(engine, "UPDATE audit_log SET detail = 'x' WHERE id = :id", id=ids[0])
        execute(engine, "DELETE FROM audit_log WHERE id = :id", id=ids[2])
        engine.dispose()

        assert cli.main(["audit", "verify"]) == 1
        out = capsys.readouterr().out.splitlines()
        removed = "(a row was removed, inserted or reordered)"
        assert out[:-1] == [
            f"row {ids[0]}: content does not match its hash (edited)",
            f"row {ids[3]}: does not follow row {ids[1]} {removed}",
        ]
        assert out[-1].startswith("audit log: 3 rows, chain BROKEN (2 problems)")
    finally:
        get_settings.cache_clear()


def test_concurrent_reads_all_append_to_one_chain(
    engine: sa.Engine, sessions: sessionmaker[Session]
) -> None:
    errors: list[BaseException] = []

    def reader(n: int) -> None:
        try:
            for i in range(6):
                with unit_of_work(sessions) as session:
                    session.execute(sa.text("SELECT count(*) FROM frames"))  # as a request does
                    frame_id = f"{n:016x}{i:016x}"
                    record_read(INVESTIGATOR, "frame.stored.read", frame_id, session=session)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sessions() as session:
        report = verify_audit_chain(session)
    assert report.ok and report.rows == 36
