"""GET /v1/stats/storage: honest accounting, cache bytes included, per camera and per day."""

from __future__ import annotations

import pytest

from app.stats.schemas import savings_ratio
from tests.app.conftest import Archive
from tests.app.images import image_bytes


def stats(archive: Archive, **params: object) -> dict:
    response = archive.get("/v1/stats/storage", params=params)
    assert response.status_code == 200
    return response.json()


def test_empty_archive_has_zero_everything(archive: Archive) -> None:
    body = stats(archive)
    assert body["totals"] == {
        "frames": 0,
        "bytes_uploaded": 0,
        "bytes_stored": 0,
        "bytes_cache": 0,
        "savings_ratio": 0.0,
    }
    assert body["cameras"] == [] and body["daily"] == []


def test_totals_cameras_and_days_add_up_from_the_frames(archive: Archive) -> None:
    uploads = [
        ("cam-a", "2024-05-01T08:00:00Z", image_bytes("BMP", 640, 480, seed=1)),
        ("cam-a", "2024-05-02T08:00:00Z", image_bytes("BMP", 800, 600, seed=2)),
        ("cam-b", "2024-05-02T23:30:00+02:00", image_bytes("PNG", 640, 480, seed=3)),  # May 2 UTC
    ]
    frames = [
        archive.upload(data, camera_id=cam, captured_at=at).json() for cam, at, data in uploads
    ]
    up = [f["original"]["bytes"] for f in frames]
    kept = [f["stored"]["bytes"] for f in frames]

    body = stats(archive)

    totals = body["totals"]
    assert totals["frames"] == 3
    assert totals["bytes_uploaded"] == sum(up)
    assert totals["bytes_stored"] == sum(kept)
    assert totals["bytes_cache"] == 0
    assert totals["savings_ratio"] == pytest.approx(1 - sum(kept) / sum(up))
    assert [(c["camera_id"], c["frames"], c["bytes_uploaded"]) for c in body["cameras"]] == [
        ("cam-a", 2, up[0] + up[1]),
        ("cam-b", 1, up[2]),
    ]
    assert [(d["date"], d["frames"], d["bytes_stored"]) for d in body["daily"]] == [
        ("2024-05-01", 1, kept[0]),
        ("2024-05-02", 2, kept[1] + kept[2]),
    ]
    for row in [*body["cameras"], *body["daily"]]:
        expected = 1 - (row["bytes_stored"] + row["bytes_cache"]) / row["bytes_uploaded"]
        assert row["savings_ratio"] == pytest.approx(expected)


def test_restore_cache_bytes_count_against_the_savings(archive: Archive) -> None:
    frame = archive.upload(image_bytes("BMP", 1280, 720)).json()
    before = stats(archive)
    restored = archive.get(f"/v1/frames/{frame['id']}/restored")

    after = stats(archive)

    cache = len(restored.content)
    assert after["totals"]["bytes_cache"] == cache
    assert after["cameras"][0]["bytes_cache"] == cache
    assert after["daily"][0]["bytes_cache"] == cache
    assert after["totals"]["savings_ratio"] == pytest.approx(
        1 - (frame["stored"]["bytes"] + cache) / frame["original"]["bytes"]
    )
    assert after["totals"]["savings_ratio"] < before["totals"]["savings_ratio"]


def test_audit_references_count_as_stored(archive_factory, settings_with) -> None:
    archive = archive_factory(settings_with(audit_sample_rate=1.0))
    frame = archive.upload(image_bytes("BMP", 640, 480)).json()
    reference = archive.runtime.store.get(f"references/{frame['id'][:2]}/{frame['id']}.png")
    assert stats(archive)["totals"]["bytes_stored"] == frame["stored"]["bytes"] + len(reference)


def test_daily_rows_are_limited_to_the_most_recent_days(archive: Archive) -> None:
    for day in (1, 2, 3):
        archive.upload(image_bytes(seed=day), captured_at=f"2024-05-0{day}T12:00:00Z")
    assert [d["date"] for d in stats(archive, days=2)["daily"]] == ["2024-05-02", "2024-05-03"]


@pytest.mark.parametrize(
    ("uploaded", "stored", "cache", "ratio"),
    [(0, 0, 0, 0.0), (1000, 250, 0, 0.75), (1000, 250, 250, 0.5), (100, 150, 0, -0.5)],
)
def test_savings_ratio_formula(uploaded: int, stored: int, cache: int, ratio: float) -> None:
    assert savings_ratio(uploaded, stored, cache) == pytest.approx(ratio)
