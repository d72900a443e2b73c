"""The service helpers skip a test when a service is absent, and fail it instead in CI."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests import services


def _outcome(monkeypatch: pytest.MonkeyPatch, ci: str | None, check: object) -> str:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    try:
        check()  # type: ignore[operator]
    except pytest.skip.Exception:
        return "skipped"
    except pytest.fail.Exception:
        return "failed"
    return "passed"


@pytest.mark.parametrize(
    ("ci", "expected"), [(None, "skipped"), ("false", "skipped"), ("true", "failed")]
)
def test_an_absent_postgres_skips_outside_ci_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str | None, expected: str
) -> None:
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{services.free_port()}/postgres"
    assert _outcome(monkeypatch, ci, lambda: services.require_postgres(dead)) == expected


@pytest.mark.parametrize(("ci", "expected"), [(None, "skipped"), ("true", "failed")])
def test_an_absent_redis_skips_outside_ci_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str | None, expected: str
) -> None:
    dead = f"redis://127.0.0.1:{services.free_port()}/0"
    assert _outcome(monkeypatch, ci, lambda: services.require_redis(dead)) == expected


def test_the_reason_names_the_missing_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    dead = f"redis://127.0.0.1:{services.free_port()}/0"
    with pytest.raises(pytest.skip.Exception, match="Redis not reachable"):
        services.require_redis(dead)


def test_a_private_redis_server_stops_and_starts_on_its_port(
    tmp_path: Path,
) -> None:
    with services.redis_server(tmp_path) as server:
        assert redis.Redis.from_url(server.url).ping()
        server.stop()
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(server.url, socket_connect_timeout=1).ping()
        server.start()
        assert redis.Redis.from_url(server.url).ping()
