"""End to end in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright for
Python through `executable_path`: no browser download) against a live uvicorn server. It signs in,
checks the dashboard's numbers against /v1/stats/storage, browses to a frame, zooms the viewer,
starts an export and signs out; screenshots go to $CCTV_TEST_ARTIFACTS (test-artifacts/browser).

Without chromium or playwright the test skips naming what to install; in CI (CI=true) it fails.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image, ImageDraw

from app.main import create_app
from app.runtime import Runtime
from app.stats.quality import measure_quality
from app.web.session import COOKIE
from tests.app.conftest import add_keys
from tests.services import unavailable

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("CCTV_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
INSTALL = (
    "needs Debian's chromium (apt-get install chromium) and Playwright for Python "
    "(pip install playwright; never `playwright install`)"
)


def chromium_path() -> str:
    """The system Chromium, or skip (fail in CI) saying what to install."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable(f"playwright is not installed: {INSTALL}")
    found = os.environ.get("CCTV_CHROMIUM") or shutil.which("chromium")
    if not found:
        unavailable(f"no chromium on PATH: {INSTALL}")
    return str(found)


def camera_frame(seed: int, width: int = 640, height: int = 360) -> bytes:
    """A car-park-like CCTV frame: sky, tarmac, parked cars, bay lines, a timestamp overlay."""
    image = Image.new("RGB", (width, height), (132, 160, 190))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, height // 3, width, height], fill=(88, 90, 94))
    for bay in range(9):
        x = 20 + bay * 70
        draw.line([x, height // 2, x - 30, height], fill=(235, 235, 220), width=3)
        if (bay + seed) % 3:
            colour = ((bay * 53 + seed * 31) % 200 + 40, (bay * 97) % 180 + 40, (seed * 71) % 200)
            draw.rounded_rectangle([x + 5, height // 2 + 30, x + 55, height - 40], 8, fill=colour)
            draw.rectangle([x + 12, height // 2 + 40, x + 48, height // 2 + 70], fill=(40, 50, 60))
    draw.rectangle([0, 0, 250, 22], fill=(0, 0, 0))
    draw.text((6, 5), f"CAM-{seed % 2 + 1}  2024-05-0{seed % 3 + 1} 0{seed}:12:44", fill="white")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=92)
    return out.getvalue()


@dataclass
class LiveServer:
    base_url: str
    runtime: Runtime
    keys: dict[str, str]

    def api(self, path: str, key: str = "investigator") -> Any:
        response = httpx.get(self.base_url + path, headers={"X-API-Key": self.keys[key]})
        response.raise_for_status()
        return response.json()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def chromium() -> str:
    return chromium_path()


@pytest.fixture
def live(settings_with: Any, tiny_restorer: Any, chromium: str) -> Iterator[LiveServer]:
    """uvicorn serving the app on a free port, with frames from two cameras over three days,
    the audit sample measured and one frame restored."""
    settings = settings_with(audit_sample_rate=0.5, storage_price_per_gb_month=0.023)
    app = create_app(settings, restorer=tiny_restorer)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    runtime: Runtime = app.state.runtime
    live = LiveServer(f"http://127.0.0.1:{port}", runtime, add_keys(runtime))
    with httpx.Client(base_url=live.base_url, headers={"X-API-Key": live.keys["admin"]}) as api:
        ids = []
        for seed in range(6):
            response = api.post(
                "/v1/frames",
                files={"file": (f"{seed}.jpg", camera_frame(seed), "image/jpeg")},
                data={
                    "camera_id": f"car-park-{seed % 2 + 1}",
                    "captured_at": f"2024-05-0{seed % 3 + 1}T0{seed}:12:44Z",
                },
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        measure_quality(
            session_factory=runtime.session_factory, store=runtime.store, restorer=runtime.restorer
        )
        assert api.get(f"/v1/frames/{ids[0]}/restored", params={"wait": 60}).status_code == 200
    yield live
    server.should_exit = True
    thread.join(30)


def test_an_investigator_signs_in_reads_the_dashboard_and_views_a_frame(
    live: LiveServer, chromium: str
) -> None:
    from playwright.sync_api import expect, sync_playwright

    executable = chromium
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    key = live.keys["admin"]  # read and admin: the viewer shows both buttons
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        urls: list[str] = []
        page.on("request", lambda request: urls.append(request.url))
        try:
            _sign_in(page, live, key)
            _dashboard(page, live)
            frame_id = _browse(page, live)
            _viewer(page, live, frame_id)
            _export(page)
            page.click("#logout")
            page.wait_for_url(f"{live.base_url}/login")
            page.goto(f"{live.base_url}/dashboard")
            expect(page).to_have_url(f"{live.base_url}/login?next=%2Fdashboard")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert urls and not [url for url in urls if key in url]  # the key is never in a URL


def _sign_in(page: Any, live: LiveServer, key: str) -> None:
    page.goto(f"{live.base_url}/dashboard")
    page.wait_for_url(f"{live.base_url}/login?next=%2Fdashboard")
    page.fill("#api_key", "cctv_wrong")
    page.click("#sign-in")
    assert page.inner_text("#error") == "Unknown or revoked API key."
    page.fill("#api_key", key)
    page.click("#sign-in")
    page.wait_for_url(f"{live.base_url}/dashboard")
    (cookie,) = [c for c in page.context.cookies() if c["name"] == COOKIE]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert key not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # out of scripts' reach


def _dashboard(page: Any, live: LiveServer) -> None:
    stats = live.api("/v1/stats/storage")
    totals = stats["totals"]
    assert page.inner_text("#total-frames .value") == str(totals["frames"])
    for element, field in [
        ("total-uploaded", "bytes_uploaded"),
        ("total-stored", "bytes_stored"),
        ("total-cache", "bytes_cache"),
    ]:
        assert page.inner_text(f"#{element} .bytes") == f"{totals[field]:,}", element
    assert page.inner_text("#total-savings .value") == f"{totals['savings_ratio'] * 100:.1f} %"
    not_kept = totals["bytes_uploaded"] - totals["bytes_stored"] - totals["bytes_cache"]
    money = round(not_kept / 1e9 * 0.023, 2) + 0.0  # no "-0.00" for a loss under a cent
    assert page.inner_text("#money-saved .value") == f"{money:.2f} USD"
    for camera in stats["cameras"]:
        row = page.locator(f'#cameras tr[data-camera="{camera["camera_id"]}"]')
        assert row.locator("td.frames").inner_text() == str(camera["frames"])
        assert row.locator("td.stored").get_attribute("data-bytes") == str(camera["bytes_stored"])
        assert row.locator("td.savings").inner_text() == f"{camera['savings_ratio'] * 100:.1f} %"
    chart = page.locator("#chart-storage")
    assert chart.locator("rect").count() == 3 * len(stats["daily"])
    for day in stats["daily"]:
        assert chart.locator("text", has_text=day["date"]).count() == 1
    assert page.locator("#chart-quality polyline").count() >= 1
    assert chart.bounding_box()["width"] > 600  # drawn, not collapsed
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)


def _browse(page: Any, live: LiveServer) -> str:
    page.click("text=Frames")
    page.wait_for_url(f"{live.base_url}/frames")
    page.select_option("#camera", "car-park-1")
    page.fill("#from", "2024-05-01T00:00")
    page.fill("#to", "2024-05-03T00:00")
    page.click("#show")
    page.wait_for_url("**/frames?camera_id=car-park-1*")
    expected = live.api(
        "/v1/frames?camera_id=car-park-1&from=2024-05-01T00:00:00Z&to=2024-05-03T00:00:00Z"
    )
    rows = page.locator("#frames tr[data-frame]")
    assert [rows.nth(i).get_attribute("data-frame") for i in range(rows.count())] == [
        item["id"] for item in expected["items"]
    ]
    page.screenshot(path=str(ARTIFACTS / "frames.png"), full_page=True)
    first = expected["items"][0]["id"]
    page.click(f'#frames tr[data-frame="{first}"] a')
    page.wait_for_url(f"{live.base_url}/frames/{first}")
    return str(first)


def _viewer(page: Any, live: LiveServer, frame_id: str) -> None:
    frame = live.api(f"/v1/frames/{frame_id}")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.viewport img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)",
        timeout=60_000,
    )
    kinds = page.evaluate(
        "() => Promise.all(['img-stored', 'img-bicubic', 'img-edsr'].map((id) =>"
        " fetch(document.getElementById(id).src).then((r) => r.headers.get('content-type'))))"
    )
    assert kinds == [frame["stored"]["media_type"], "image/png", "image/png"]
    assert page.inner_text("#sha-original") == frame["original"]["sha256"]
    assert page.inner_text("#sha-stored") == frame["stored"]["sha256"]
    assert page.inner_text("#sha-weights") == live.runtime.restorer.weights_sha256
    assert "generated by a neural network" in page.inner_text("#notice")
    page.screenshot(path=str(ARTIFACTS / "viewer.png"), full_page=True)

    def transforms() -> list[str]:
        return list(
            page.evaluate(
                "() => [...document.querySelectorAll('.viewport img')]"
                ".map((img) => img.style.transform)"
            )
        )

    page.locator("#zoom").fill("4")
    zoomed = transforms()
    assert len(zoomed) >= 3 and len(set(zoomed)) == 1 and "scale(4)" in zoomed[0]
    box = page.locator(".viewport").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2 + 40, steps=4)
    page.mouse.up()
    dragged = transforms()
    assert len(set(dragged)) == 1 and dragged[0] != zoomed[0]  # every picture moved together
    page.screenshot(path=str(ARTIFACTS / "viewer-zoomed.png"), full_page=True)


def _export(page: Any) -> None:
    page.click("#export")
    page.wait_for_url("**/exports/*")
    for _ in range(100):
        if page.inner_text("#state") == "done":
            break
        time.sleep(0.2)
        page.reload()
    assert page.inner_text("#state") == "done"
    assert page.locator("#download").count() == 1
