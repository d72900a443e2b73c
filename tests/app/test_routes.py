"""Every API route is guarded: walking the app's own routes (its OpenAPI description, which
FastAPI builds from every included router), so a route added later cannot forget its key check."""

from __future__ import annotations

import re

from tests.app.conftest import Archive

# The only routes without an API key (README: the probes, the public signing key). The pages
# (app/web) are not part of the API description; without a session they send the browser to
# /login (tests/app/web).
PUBLIC = {"/healthz", "/readyz", "/v1/signing-key"}  # the key exports are verified with


def operations(archive: Archive) -> list[tuple[str, str]]:
    paths = archive.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops]


def test_every_route_but_the_public_ones_is_401_without_a_key(archive: Archive) -> None:
    checked: list[str] = []
    for method, route in operations(archive):
        if route in PUBLIC:
            continue
        path = re.sub(r"\{[^}]+\}", "0" * 32, route)
        response = archive.client.request(method, path)
        assert response.status_code == 401, f"{method} {route}: {response.status_code}"
        assert response.json()["error"]["code"] == "unauthenticated"
        checked.append(f"{method} {route}")
    # The routes the README lists (a renamed or vanished route shows up here too).
    assert sorted(checked) == [
        "DELETE /v1/holds/{hold_id}",
        "GET /metrics",
        "GET /v1/audit",
        "GET /v1/cameras",
        "GET /v1/exports/{export_id}",
        "GET /v1/exports/{export_id}/download",
        "GET /v1/frames",
        "GET /v1/frames/{frame_id}",
        "GET /v1/frames/{frame_id}/original",
        "GET /v1/frames/{frame_id}/restored",
        "GET /v1/frames/{frame_id}/stored",
        "GET /v1/holds",
        "GET /v1/holds/{hold_id}",
        "GET /v1/restore-jobs/{job_id}",
        "GET /v1/stats/quality",
        "GET /v1/stats/storage",
        "POST /v1/exports",
        "POST /v1/frames",
        "POST /v1/holds",
        "POST /v1/restore-jobs",
        "POST /v1/restore-jobs/{job_id}/resume",
        "PUT /v1/cameras/{camera_id}/policy",
    ]


def test_the_public_routes_answer_without_a_key(archive: Archive) -> None:
    public = {route for _, route in operations(archive) if route in PUBLIC}
    assert public == PUBLIC
    for path in sorted(PUBLIC | {"/login"}):
        assert archive.client.get(path).status_code == 200, path
