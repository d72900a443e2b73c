"""One JSON error shape everywhere: {"error": {"code", "message"}}."""

from __future__ import annotations

from tests.app.conftest import Archive, TestClient


def test_unknown_route_is_404_in_the_error_shape(archive: Archive) -> None:
    response = archive.client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "no such endpoint: GET /v1/nothing-here"}
    }


def test_wrong_method_is_405_in_the_error_shape(archive: Archive) -> None:
    response = archive.client.delete("/v1/frames", headers=archive.as_key("admin"))
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_validation_errors_name_the_field(archive: Archive) -> None:
    response = archive.get("/v1/frames", params={"limit": 0})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("limit:")


def test_unexpected_errors_are_500_without_internals(archive: Archive, monkeypatch) -> None:
    from app.stats import endpoints

    def boom(**_: object) -> None:
        raise ZeroDivisionError("secret internals")

    monkeypatch.setattr(endpoints, "storage_stats", boom)
    client = TestClient(archive.client.app, raise_server_exceptions=False)
    response = client.get("/v1/stats/storage", headers=archive.as_key("admin"))
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "internal server error"}
    }
