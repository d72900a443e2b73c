"""The schema comes from the migrations, from an empty database, and goes back down cleanly."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from app import migrate
from app.tables import metadata


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_creates_every_table_and_is_current(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'archive.db'}"  # the folder does not exist yet
    migrate.upgrade(url)
    assert tables(url) == set(metadata.tables) | {"alembic_version"}
    assert migrate.is_current(url)


def test_upgrade_is_idempotent_and_downgrade_removes_everything(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    migrate.upgrade(url)
    migrate.upgrade(url)
    command.downgrade(migrate.alembic_config(url), "base")
    assert tables(url) == {"alembic_version"}
    migrate.upgrade(url)
    assert migrate.is_current(url)


def test_the_migrations_ship_inside_the_package() -> None:
    assert (migrate.SCRIPT_LOCATION / "env.py").is_file()
    assert (migrate.SCRIPT_LOCATION / "alembic.ini").is_file()
    assert migrate.head_revision() is not None
