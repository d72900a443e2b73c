"""The archive on each database (SQLite, PostgreSQL) and each blob store (local folder, S3)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app import migrate
from app.config import Settings
from tests import services
from tests.app.conftest import Archive


@pytest.fixture(scope="module")
def moto() -> Iterator[services.MotoServer]:
    with services.moto_server() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def backed_archive(
    request: pytest.FixtureRequest,
    database_url: str,
    settings_with: Callable[..., Settings],
    archive_factory: Any,
) -> Archive:
    """An archive on `database_url` with blobs in a local folder or in S3 (moto)."""
    migrate.upgrade(database_url)
    overrides: dict[str, Any] = {"database_url": database_url}
    if request.param == "s3":
        moto: services.MotoServer = request.getfixturevalue("moto")
        overrides |= {
            "storage_url": f"s3://{services.unique_bucket()}/archive",
            "s3_endpoint_url": moto.endpoint_url,
            "s3_region": moto.region,
            "s3_access_key_id": moto.access_key_id,
            "s3_secret_access_key": moto.secret_access_key,
            "s3_create_bucket": True,
        }
    archive: Archive = archive_factory(settings_with(**overrides))
    return archive
