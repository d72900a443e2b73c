"""The dashboard's per-camera column: the archive against the whole frame recompressed with WebP
at equal bytes (wins or loses by how many dB, wins by size, not measured); on SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

from app import migrate
from tests.app.conftest import Archive
from tests.app.stats.test_versus_recompression import add_measurements
from tests.app.web.conftest import sign_in


def cell(html: str, camera: str) -> tuple[str, str]:
    """The camera's recompression cell: its verdict and its text without markup."""
    row = re.search(rf'<tr data-camera="{camera}">(.*?)</tr>', html, re.S)
    assert row, camera
    found = re.search(
        r'<td class="text recompression" data-verdict="([^"]+)">(.*?)</td>', row.group(1), re.S
    )
    assert found, camera
    return found.group(1), " ".join(re.sub(r"<[^>]+>", "", found.group(2)).split())


def test_the_camera_table_says_whether_the_archive_beats_recompression(
    archive_factory: Any, settings_with: Any, database_url: str
) -> None:
    migrate.upgrade(database_url)
    archive: Archive = archive_factory(settings_with(database_url=database_url))
    add_measurements(archive)
    sign_in(archive)
    html = archive.client.get("/dashboard").text
    assert "vs whole-frame WebP at equal bytes" in html
    assert cell(html, "gate-1") == (
        "wins",
        "+0.4 dB, wins (2 compared, 1 with no WebP that small)",
    )
    assert cell(html, "lobby-3") == ("loses", "-3.1 dB, loses (1 compared)")
    assert cell(html, "roof-4") == ("wins", "no WebP frame that small: wins by size")
    assert cell(html, "yard-2") == ("not-measured", "not measured")


def test_a_camera_never_measured_is_not_measured(archive: Archive) -> None:
    archive.upload(camera_id="cam-9")
    sign_in(archive)
    assert cell(archive.client.get("/dashboard").text, "cam-9") == (
        "not-measured",
        "not measured",
    )
