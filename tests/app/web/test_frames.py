"""The frame browser (by camera and capture time), the viewer (images side by side, provenance,
hashes), the images it shows (audit-logged like the API's), and its hold and export buttons."""

from __future__ import annotations

import hashlib
import io
import re
from html import unescape
from typing import Any

import sqlalchemy as sa
from PIL import Image

from tests.app.conftest import Archive, wait_for
from tests.app.images import image_bytes
from tests.app.web.conftest import sign_in


def _upload_three(archive: Archive) -> list[str]:
    return [
        archive.frame_id(
            image_bytes(seed=1), camera_id="gate-1", captured_at="2024-05-01T08:00:00Z"
        ),
        archive.frame_id(
            image_bytes(seed=2), camera_id="gate-1", captured_at="2024-05-01T09:30:00Z"
        ),
        archive.frame_id(
            image_bytes(seed=3), camera_id="yard-2", captured_at="2024-05-01T09:00:00Z"
        ),
    ]


def _listed(html: str) -> list[str]:
    return re.findall(r'<tr data-frame="([0-9a-f]+)">', html)


def test_the_browser_lists_frames_by_camera_and_capture_time(archive: Archive) -> None:
    first, second, other = _upload_three(archive)
    sign_in(archive)
    assert _listed(archive.client.get("/frames").text) == [first, other, second]  # capture order
    assert _listed(archive.client.get("/frames?camera_id=gate-1").text) == [first, second]
    # The browser's datetime-local value has no offset: it is read as UTC.
    page = archive.client.get("/frames?camera_id=gate-1&from=2024-05-01T09:00&to=2024-05-01T10:00")
    assert _listed(page.text) == [second]
    assert '<option value="yard-2" >yard-2</option>' in page.text.replace("  ", " ")


def test_a_bad_time_is_explained_on_the_page(archive: Archive) -> None:
    sign_in(archive)
    page = archive.client.get("/frames?from=yesterday")
    assert page.status_code == 200
    assert "'from' is not a date and time" in unescape(page.text)
    later = archive.client.get("/frames?from=2024-05-02T00:00&to=2024-05-01T00:00")
    assert "'to' must be after 'from'" in unescape(later.text)


def test_the_viewer_shows_the_hashes_and_the_provenance_of_the_api(archive: Archive) -> None:
    frame_id = _upload_three(archive)[0]
    frame = archive.get(f"/v1/frames/{frame_id}").json()
    restored = archive.get(f"/v1/frames/{frame_id}/restored")
    sign_in(archive)
    html = archive.client.get(f"/frames/{frame_id}").text
    assert f'id="sha-original">{frame["original"]["sha256"]}<' in html
    assert f'id="sha-stored">{frame["stored"]["sha256"]}<' in html
    assert f'id="sha-weights">{restored.headers["X-Restoration-Weights-SHA256"]}<' in html
    assert restored.headers["X-Derivative-Notice"] in html
    for pane in ("img-stored", "img-bicubic", "img-edsr"):
        assert f'id="{pane}"' in html
    assert 'id="img-reference"' not in html  # no audit sample in these settings
    assert 'type="range" id="zoom"' in html


def test_the_viewer_images_are_the_api_images_and_are_audit_logged(archive: Archive) -> None:
    frame_id = _upload_three(archive)[0]
    stored = archive.get(f"/v1/frames/{frame_id}/stored").content
    bicubic = archive.get(f"/v1/frames/{frame_id}/restored?method=bicubic").content
    sign_in(archive)
    before = archive.count("audit_log")
    page_stored = archive.client.get(f"/frames/{frame_id}/stored.img")
    assert hashlib.sha256(page_stored.content).hexdigest() == hashlib.sha256(stored).hexdigest()
    page_bicubic = archive.client.get(f"/frames/{frame_id}/restored.img?method=bicubic")
    assert page_bicubic.headers["X-AI-Generated"] == "false"
    assert Image.open(io.BytesIO(page_bicubic.content)).size == (400, 400)
    assert page_bicubic.content == bicubic
    edsr = archive.client.get(f"/frames/{frame_id}/restored.img")
    assert edsr.status_code == 200 and edsr.headers["X-AI-Generated"] == "true"
    assert archive.count("audit_log") == before + 3
    with archive.runtime.engine.connect() as connection:
        names = (
            connection.execute(
                sa.text(
                    "SELECT DISTINCT key_name FROM audit_log "
                    "WHERE id > (SELECT max(id) - 3 FROM audit_log)"
                )
            )
            .scalars()
            .all()
        )
    assert names == ["investigator"]


def test_images_and_pages_need_a_session(archive: Archive) -> None:
    frame_id = _upload_three(archive)[0]
    image = archive.client.get(f"/frames/{frame_id}/stored.img", follow_redirects=False)
    assert image.status_code == 401
    page = archive.client.get(f"/frames/{frame_id}", follow_redirects=False)
    assert page.status_code == 303


def test_an_unknown_frame_is_a_404_page(archive: Archive) -> None:
    sign_in(archive)
    page = archive.client.get("/frames/" + "0" * 32)
    assert page.status_code == 404
    assert "There is no frame" in page.text


def test_the_viewer_shows_the_audit_reference_where_kept(
    archive_factory: Any, settings_with: Any
) -> None:
    archive = archive_factory(settings_with(audit_sample_rate=1.0))
    frame_id = archive.frame_id(image_bytes(seed=4))
    sign_in(archive)
    assert 'id="img-reference"' in archive.client.get(f"/frames/{frame_id}").text
    reference = archive.client.get(f"/frames/{frame_id}/reference.img")
    assert Image.open(io.BytesIO(reference.content)).size == (400, 400)


def test_an_admin_places_a_legal_hold_from_the_viewer(archive: Archive) -> None:
    frame_id = _upload_three(archive)[0]
    sign_in(archive, "admin")
    assert 'id="hold"' in archive.client.get(f"/frames/{frame_id}").text
    response = archive.client.post(
        f"/frames/{frame_id}/hold",
        data={"case_reference": "CASE-7", "reason": "burglary, 1 May"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    hold_id = response.headers["location"].split("held=")[1]
    hold = archive.get(f"/v1/holds/{hold_id}").json()
    assert hold["frame_ids"] == [frame_id] and hold["case_reference"] == "CASE-7"
    assert hold["created_by"] == "admin"
    assert (
        f"Legal hold <code>{hold_id}</code>"
        in archive.client.get(response.headers["location"]).text
    )


def test_a_read_key_sees_no_hold_button_and_cannot_post_one(archive: Archive) -> None:
    frame_id = _upload_three(archive)[0]
    sign_in(archive)
    assert 'id="hold"' not in archive.client.get(f"/frames/{frame_id}").text
    response = archive.client.post(
        f"/frames/{frame_id}/hold", data={"case_reference": "C", "reason": "r"}
    )
    assert response.status_code == 403
    assert archive.get("/v1/holds").json()["items"] == []


def test_a_form_from_another_site_is_refused(archive: Archive) -> None:
    frame_id = _upload_three(archive)[0]
    sign_in(archive, "admin")
    response = archive.client.post(
        f"/frames/{frame_id}/hold",
        data={"case_reference": "C", "reason": "r"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert archive.get("/v1/holds").json()["items"] == []


def test_an_export_started_from_the_viewer_is_downloaded_from_its_page(archive: Archive) -> None:
    frame_id = _upload_three(archive)[0]
    sign_in(archive)
    response = archive.client.post(f"/frames/{frame_id}/export", follow_redirects=False)
    assert response.status_code == 303
    page_url = response.headers["location"]
    export_id = page_url.rsplit("/", 1)[1]
    wait_for(lambda: archive.get(f"/v1/exports/{export_id}").json()["state"] == "done")
    export = archive.get(f"/v1/exports/{export_id}").json()
    assert export["requested_by"] == "investigator" and export["frames"] == 1
    page = archive.client.get(page_url).text
    assert 'id="download"' in page and export["sha256"] in page
    bundle = archive.client.get(f"/exports/{export_id}/download").content
    assert hashlib.sha256(bundle).hexdigest() == export["sha256"]


def test_a_restoration_still_running_shows_a_placeholder(
    archive_factory: Any, settings_with: Any, gated: Any
) -> None:
    archive = archive_factory(settings_with(restore_wait_s=0.2), restorer=gated)
    frame_id = archive.frame_id(image_bytes(seed=5))
    sign_in(archive)
    response = archive.client.get(f"/frames/{frame_id}/restored.img")
    assert response.status_code == 202
    assert response.headers["content-type"] == "image/svg+xml"
    assert "Restoring" in response.text
    gated.gate.set()
    wait_for(lambda: archive.client.get(f"/frames/{frame_id}/restored.img").status_code == 200)


def test_browsing_the_list_reads_no_frame(archive: Archive) -> None:
    _upload_three(archive)
    sign_in(archive)
    before = archive.count("audit_log")
    archive.client.get("/frames")
    assert archive.count("audit_log") == before  # the list shows metadata only


def test_the_viewer_shows_the_original_while_it_is_kept(
    archive_factory: Any, settings_with: Any
) -> None:
    archive = archive_factory(settings_with(originals_hours=24))
    upload = image_bytes(fmt="JPEG", seed=6)
    frame_id = archive.frame_id(upload)
    sign_in(archive)
    assert 'id="img-original"' in archive.client.get(f"/frames/{frame_id}").text
    original = archive.client.get(f"/frames/{frame_id}/original.img")
    assert original.content == upload  # the camera's bytes, unchanged
    assert original.headers["content-type"] == "image/jpeg"
