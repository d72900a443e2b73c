"""/healthz (liveness) and /readyz (database at head, store writable, queue running, model)."""

from __future__ import annotations

import re
import resource
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.app.conftest import Archive


def test_healthz_says_ok(archive: Archive) -> None:
    assert archive.client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_each_dependency(archive: Archive, tiny_restorer) -> None:
    response = archive.client.get("/readyz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["database"] == checks["storage"] == checks["queue"] == "ok"
    # The model the server actually holds, named with the start of its weights' SHA-256.
    assert checks["model"] == f"tiny-test ({tiny_restorer.weights_sha256[:12]}, torch)"


def test_readyz_is_503_when_the_store_cannot_be_written(archive_factory, tmp_path, settings_with):
    blocker = tmp_path / "blobs-is-a-file"
    blocker.write_text("not a folder")
    archive = archive_factory(settings_with(storage_url=str(blocker)))

    response = archive.client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["error"]["code"] == "not_ready" and "storage" in body["error"]["message"]
    assert body["checks"]["storage"] == "unavailable" and body["checks"]["database"] == "ok"


def test_readyz_is_503_when_the_schema_is_behind(archive: Archive) -> None:
    with archive.runtime.engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'old'"))
    response = archive.client.get("/readyz")
    assert response.status_code == 503
    assert "migration" in response.json()["error"]["message"]


def test_the_api_documents_itself(archive: Archive) -> None:
    spec = archive.client.get("/openapi.json").json()
    assert "/v1/frames/{frame_id}/restored" in spec["paths"]
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert archive.client.get("/docs").status_code == 200


def test_readyz_is_503_when_a_small_write_fails_though_empty_files_can_be_made(
    archive: Archive,
) -> None:
    # A file-size limit of 0 bytes: creating an empty file still works (what readyz used to
    # try), writing any byte fails with EFBIG, as writes do on a full disk.
    previous_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, previous_limit[1]))
    try:
        response = archive.client.get("/readyz")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous_limit)
        signal.signal(signal.SIGXFSZ, previous_handler)
    assert response.status_code == 503, response.text
    assert response.json()["checks"]["storage"] == "unavailable"
    assert "storage" in response.json()["error"]["message"]


def test_readyz_reports_free_space_and_is_503_below_the_threshold(
    archive_factory: Any, settings_with: Any, tmp_path: Path
) -> None:
    free = shutil.disk_usage(tmp_path).free
    roomy = archive_factory(settings_with(min_free_bytes=1))
    response = roomy.client.get("/readyz")
    assert response.status_code == 200
    # The figure the operating system reports for the blob folder's disk (a few MB of drift).
    assert abs(response.json()["checks"]["storage_free_bytes"] - free) < 64 * 1024 * 1024

    cramped = archive_factory(settings_with(min_free_bytes=free * 1000))
    response = cramped.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["storage"] == "unavailable"
    assert "free" in body["error"]["message"] and "CCTV_MIN_FREE_BYTES" in body["error"]["message"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_load_everything_from_the_archive_itself(
    archive: Archive, page: str
) -> None:
    html = archive.client.get(page).text
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assets += re.findall(r"""url:\s*["']([^"']+)["']""", html)  # the schema Swagger UI loads
    scripts = [a for a in assets if a.endswith(".js")]
    assert scripts, html[:500]
    # Nothing from another host (no CDN, no web fonts): a machine without internet sees the page.
    assert not [a for a in assets if re.match(r"^(https?:)?//", a)], assets
    for asset in assets:
        response = archive.client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100, asset
