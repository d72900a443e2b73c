"""The dashboard shows what /v1/stats says, money saved at the configured price, charts with
axes, dates and units, per-camera rows and the restore queue; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app import migrate
from app.stats.quality import measure_quality
from tests.app.conftest import Archive, wait_for_job
from tests.app.images import image_bytes
from tests.app.web.conftest import sign_in

PRICE = 2000.0  # per GB-month: large, so that kilobytes of test frames show in cents


@pytest.fixture
def busy_archive(archive_factory: Any, settings_with: Any, database_url: str) -> Archive:
    """Two cameras over three capture days, every frame in the audit sample (measured), and a
    finished restore job (its restorations in the cache)."""
    migrate.upgrade(database_url)
    settings = settings_with(
        database_url=database_url, audit_sample_rate=1.0, storage_price_per_gb_month=PRICE
    )
    archive: Archive = archive_factory(settings)
    ids = []
    for seed, (camera, day) in enumerate(
        [("gate-1", 1), ("gate-1", 1), ("gate-1", 2), ("yard-2", 2), ("yard-2", 4)]
    ):
        captured = f"2024-05-0{day}T10:00:0{seed}Z"
        ids.append(archive.frame_id(image_bytes(seed=seed), camera_id=camera, captured_at=captured))
    runtime = archive.runtime
    measured = measure_quality(
        session_factory=runtime.session_factory, store=runtime.store, restorer=runtime.restorer
    )
    assert measured == 5
    job = archive.client.post(
        "/v1/restore-jobs", json={"frame_ids": ids[:2]}, headers=archive.as_key("operator")
    )
    assert wait_for_job(archive, job.json()["id"])["state"] == "done"
    return archive


def _exact_bytes(html: str, element_id: str) -> int:
    found = re.search(rf'id="{element_id}".*?<span class="bytes">([\d,]+)</span>', html, re.S)
    assert found, element_id
    return int(found.group(1).replace(",", ""))


def _stat(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}".*?<div class="value">([^<]*)</div>', html, re.S)
    assert found, element_id
    return found.group(1).strip()


def test_the_totals_are_the_stats_endpoints(busy_archive: Archive) -> None:
    stats = busy_archive.get("/v1/stats/storage").json()["totals"]
    sign_in(busy_archive)
    html = busy_archive.client.get("/dashboard").text
    assert _stat(html, "total-frames") == "5"
    assert _exact_bytes(html, "total-uploaded") == stats["bytes_uploaded"]
    assert _exact_bytes(html, "total-stored") == stats["bytes_stored"]
    assert _exact_bytes(html, "total-cache") == stats["bytes_cache"] > 0
    # Stored = the small frames + the HR references (every frame is in the audit sample here).
    frames = busy_archive.get("/v1/frames").json()["items"]
    small = sum(f["stored"]["bytes"] for f in frames)
    assert _exact_bytes(html, "total-frames-bytes") == small
    assert _exact_bytes(html, "total-references") == stats["bytes_stored"] - small > 0
    ratio = 1 - (stats["bytes_stored"] + stats["bytes_cache"]) / stats["bytes_uploaded"]
    assert _stat(html, "total-savings") == f"{ratio * 100:.1f} %"


def test_money_saved_is_the_bytes_not_kept_at_the_configured_price(busy_archive: Archive) -> None:
    stats = busy_archive.get("/v1/stats/storage").json()["totals"]
    sign_in(busy_archive)
    html = busy_archive.client.get("/dashboard").text
    not_kept = stats["bytes_uploaded"] - stats["bytes_stored"] - stats["bytes_cache"]
    assert _stat(html, "money-saved") == f"{round(not_kept / 1e9 * PRICE, 2) + 0.0:.2f} USD"
    assert f"at {PRICE} USD per GB-month" in html


def test_each_camera_row_matches_the_stats_endpoint(busy_archive: Archive) -> None:
    cameras = busy_archive.get("/v1/stats/storage").json()["cameras"]
    quality = {q["camera_id"]: q for q in busy_archive.get("/v1/stats/quality").json()["cameras"]}
    sign_in(busy_archive)
    html = busy_archive.client.get("/dashboard").text
    assert [c["camera_id"] for c in cameras] == ["gate-1", "yard-2"]
    for camera in cameras:
        row = re.search(rf'<tr data-camera="{camera["camera_id"]}">(.*?)</tr>', html, re.S)
        assert row, camera["camera_id"]
        cells = row.group(1)
        assert f'<td class="frames">{camera["frames"]}</td>' in cells
        for kind in ("uploaded", "stored", "cache"):
            assert f'class="{kind}" data-bytes="{camera["bytes_" + kind]}"' in cells
        assert f"{camera['savings_ratio'] * 100:.1f} %" in cells
        gain = quality[camera["camera_id"]]["gain_db"]
        assert f"{gain:+.2f} dB" in cells
        versus = quality[camera["camera_id"]]["recompression_gain_db"]  # measured for real
        verdict = "wins" if quality[camera["camera_id"]]["beats_recompression"] else "loses"
        assert f"{versus:+.1f} dB, {verdict}" in cells
        assert "tiny-test" in cells  # the serving model


def test_the_charts_have_axes_dates_and_units(busy_archive: Archive) -> None:
    sign_in(busy_archive)
    html = busy_archive.client.get("/dashboard").text
    storage = re.search(r'<svg class="chart" id="chart-storage".*?</svg>', html, re.S)
    assert storage
    svg = storage.group(0)
    for day in ("2024-05-01", "2024-05-02", "2024-05-04"):  # the capture days, nothing between
        assert f">{day}</text>" in svg
    assert ">2024-05-03</text>" not in svg
    assert re.search(r">bytes per day \((kB|MB)\)</text>", svg)
    assert ">capture date (UTC)</text>" in svg
    assert svg.count("<rect") == 3 * 3  # uploaded, stored, cache for each of 3 days
    quality = re.search(r'<svg class="chart" id="chart-quality".*?</svg>', html, re.S)
    assert quality
    assert quality.group(0).count("<polyline") == 2  # one line per camera
    assert ">PSNR-Y of the restoration (dB)</text>" in quality.group(0)


def test_the_restore_queue_shows_jobs_and_frames_by_state(busy_archive: Archive) -> None:
    sign_in(busy_archive)
    html = busy_archive.client.get("/dashboard").text
    assert _stat(html, "jobs-done") == "1"
    assert _stat(html, "jobs-queued") == "0"
    table = re.search(r'<table id="recent-jobs".*?</table>', html, re.S)
    assert table and table.group(0).count('class="text state-done"') == 1
    assert "<td>2</td><td>2</td><td>0</td>" in table.group(0)  # frames, restored, failed


def test_an_empty_archive_says_so(archive: Archive) -> None:
    sign_in(archive)
    html = archive.client.get("/dashboard").text
    assert "No frames yet." in html and "Nothing measured yet." in html
    assert _stat(archive.client.get("/dashboard").text, "money-saved") == "0.00 USD"
