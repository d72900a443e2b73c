"""/healthz (liveness) and /readyz (database at head, store writable, queue running, model)."""

from __future__ import annotations

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
    assert checks["model"] == f"tiny-test ({tiny_restorer.weights_sha256[:12]})"


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
