"""Database engine, sessions and the request's unit of work.

SQLite (the embedded default) runs in WAL mode with a busy timeout, so readers never block the
writer and concurrent writers wait for each other instead of failing at once. The same code runs
on PostgreSQL by setting CCTV_DATABASE_URL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, MetaData, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.config import Settings

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
_ROLLBACK_HOOKS = "rollback_hooks"
_COMMIT_HOOKS = "commit_hooks"

# Stable constraint names, so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# What services and tasks get to open their own short transactions (`unit_of_work(factory)`).
SessionFactory = sessionmaker[Session]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timestamps are stored as naive UTC and always come back timezone-aware (UTC).

    SQLite has no time zones; storing UTC everywhere keeps comparisons and ordering right on
    SQLite and PostgreSQL alike.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get their folder created and WAL + busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # FULL: a commit is on disk before the API acknowledges the frame it records.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def make_session_factory(
    settings: Settings | None = None, *, engine: Engine | None = None
) -> sessionmaker[Session]:
    """Sessions on `engine`, or on a new engine for `settings.database_url`."""
    if engine is None:
        if settings is None:
            raise ValueError("give settings or an engine")
        engine = make_engine(settings.database_url)
    return sessionmaker(engine, expire_on_commit=False)


def on_rollback(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` if this session's unit of work rolls back (e.g. delete a blob just written
    for a row that was never committed)."""
    session.info.setdefault(_ROLLBACK_HOOKS, []).append(callback)


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once this session's unit of work has committed (e.g. delete the blob of a
    row the transaction removed: the row goes first, so no row ever points at a missing blob)."""
    session.info.setdefault(_COMMIT_HOOKS, []).append(callback)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit at the end, or roll back (and run the rollback hooks) on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        _run_hooks(session.info.get(_ROLLBACK_HOOKS, []), "rollback")
        raise
    else:
        _run_hooks(session.info.get(_COMMIT_HOOKS, []), "commit")
    finally:
        session.info.pop(_ROLLBACK_HOOKS, None)
        session.info.pop(_COMMIT_HOOKS, None)
        session.close()


def _run_hooks(hooks: list[Callable[[], None]], when: str) -> None:
    for hook in hooks:
        try:
            hook()
        except Exception:  # the transaction's outcome stands; `verify` finds what is left over
            logger.exception("%s hook failed", when)
