"""Settings: one class, CCTV_ variables, safe defaults for the embedded service."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings


def test_defaults_put_everything_in_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)
    assert settings.data_dir == Path("data")
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'archive.db'}"
    assert settings.storage_url == f"file://{tmp_path / 'data' / 'blobs'}"
    assert settings.profile == "400:2:webp-lossless"
    assert settings.restore_backend == "inprocess"
    assert settings.model == ""  # chosen by profile


def test_environment_variables_with_the_prefix_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCTV_DATABASE_URL", "postgresql+psycopg://u@db/cctv")
    monkeypatch.setenv("CCTV_ALLOWED_FORMATS", "jpeg, PNG")
    monkeypatch.setenv("CCTV_RESTORE_CACHE_TTL_S", "60")
    monkeypatch.setenv("CCTV_S3_SECRET_ACCESS_KEY", "s3cret")
    monkeypatch.setenv("CCTV_RESTORE_ENSEMBLE", "2")
    monkeypatch.setenv("CCTV_EXPORT_TTL_DAYS", "7")
    settings = Settings(_env_file=None)
    assert settings.database_url == "postgresql+psycopg://u@db/cctv"
    assert settings.allowed_formats == ["jpeg", "png"]
    assert settings.restore_cache_ttl_s == 60
    assert (settings.restore_ensemble, settings.export_ttl_days) == (2, 7)
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    "values",
    [
        {"audit_sample_rate": 1.5},
        {"max_upload_bytes": 0},
        {"allowed_formats": ["gif"]},
        {"allowed_formats": []},
        {"restore_backend": "threads"},
        {"restore_ensemble": 3},
        {"export_ttl_days": -1},
        {"restore_time_limit_s": 3600, "restore_visibility_timeout_s": 3600},
        {"environment": "production", "s3_secret_access_key": "minioadmin"},
    ],
)
def test_unsafe_or_invalid_values_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("environment", ["development", "test"])
def test_development_values_are_fine_outside_production(environment: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, environment=environment, s3_secret_access_key="minioadmin"
    )
    assert settings.s3_secret_access_key is not None
    assert settings.s3_secret_access_key.get_secret_value() == "minioadmin"  # kept, not refused
