"""Helpers for the lifecycle tests: frames captured at chosen times, held or not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.app.conftest import Archive
from tests.app.images import image_bytes

NOW = datetime.now(UTC).replace(microsecond=0)


def days_ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def frame_at(archive: Archive, days: float, *, camera_id: str = "cam-1", seed: int = 0) -> str:
    """A frame of `camera_id` captured `days` ago (distinct pixels per seed)."""
    data = image_bytes(width=40, height=30, seed=seed)
    return archive.frame_id(data, camera_id=camera_id, captured_at=days_ago(days))
