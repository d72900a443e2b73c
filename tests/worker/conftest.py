"""Fixtures the worker tests share: a PostgreSQL database and an S3 endpoint (moto), real
services that fail the test in CI when missing (tests/services.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import services


@pytest.fixture(scope="module")
def s3() -> Iterator[services.MotoServer]:
    with services.moto_server() as server:
        yield server


@pytest.fixture
def database_url() -> Iterator[str]:
    with services.postgres_database() as url:
        yield url
