"""Restoration quality on the audit sample: PSNR-Y of the model and of bicubic, per camera."""

from __future__ import annotations

import numpy as np
import pytest

from app.stats.quality import measure_quality
from models import bicubic_upscale, decode_image
from tests.app.conftest import Archive, wait_for
from tests.app.images import image_bytes


@pytest.fixture
def sampled(archive_factory, settings_with) -> Archive:
    """An archive that keeps every frame's HR reference, with housekeeping left to the test."""
    archive: Archive = archive_factory(settings_with(audit_sample_rate=1.0))
    return archive


def measure(archive: Archive, limit: int = 32) -> int:
    runtime = archive.runtime
    return measure_quality(
        session_factory=runtime.session_factory,
        store=runtime.store,
        restorer=runtime.restorer,
        limit=limit,
    )


def psnr_y_by_hand(restored: np.ndarray, reference: np.ndarray, shave: int) -> float:
    """The published protocol written out here, not taken from models.metrics: BT.601 studio
    luma, `shave` pixels off each border, PSNR with a 255 peak."""

    def luma(image: np.ndarray) -> np.ndarray:
        r, g, b = (image[..., c].astype(np.float64) for c in range(3))
        return 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255

    error = (luma(restored) - luma(reference))[shave:-shave, shave:-shave]
    return float(10 * np.log10(255**2 / np.mean(error**2)))


def test_quality_is_psnr_y_against_the_kept_reference(sampled: Archive, tiny_restorer) -> None:
    frame = sampled.upload(image_bytes(width=320, height=240)).json()
    assert measure(sampled) == 1

    store = sampled.runtime.store
    hr = decode_image(store.get(f"references/{frame['id'][:2]}/{frame['id']}.png"))
    lr = decode_image(store.get(f"frames/{frame['id'][:2]}/{frame['id']}.png"))
    expected_edsr = psnr_y_by_hand(tiny_restorer.restore([lr])[0], hr, 2)
    expected_bicubic = psnr_y_by_hand(bicubic_upscale(lr, 2), hr, 2)

    body = sampled.get("/v1/stats/quality").json()
    assert body["model"] == {"name": "tiny-test", "weights_sha256": tiny_restorer.weights_sha256}
    (camera,) = body["cameras"]
    assert camera["camera_id"] == "cam-1" and camera["frames_measured"] == 1
    assert camera["psnr_y_edsr"] == pytest.approx(expected_edsr, abs=1e-3)
    assert camera["psnr_y_bicubic"] == pytest.approx(expected_bicubic, abs=1e-3)
    assert camera["gain_db"] == pytest.approx(expected_edsr - expected_bicubic, abs=2e-3)
    assert np.isfinite(expected_bicubic) and expected_bicubic > 20  # a sane measurement


def test_each_frame_is_measured_once_per_model(sampled: Archive) -> None:
    for seed in range(3):
        sampled.upload(image_bytes(width=64, height=48, seed=seed), camera_id=f"cam-{seed % 2}")
    assert measure(sampled, limit=2) == 2
    assert measure(sampled) == 1
    assert measure(sampled) == 0
    body = sampled.get("/v1/stats/quality").json()
    assert [(c["camera_id"], c["frames_measured"]) for c in body["cameras"]] == [
        ("cam-0", 2),
        ("cam-1", 1),
    ]
    assert body["totals"]["frames_measured"] == 3


def test_nothing_measured_reports_nulls(archive: Archive) -> None:
    body = archive.get("/v1/stats/quality").json()
    assert body["cameras"] == []
    assert body["totals"] == {
        "frames_measured": 0,
        "psnr_y_edsr": None,
        "psnr_y_bicubic": None,
        "gain_db": None,
        "frames_compared": 0,
        "psnr_y_restored_compared": None,
        "psnr_y_recompressed": None,
        "recompression_gain_db": None,
        "frames_no_webp_fit": 0,
        "beats_recompression": None,
    }


def test_the_embedded_server_measures_in_the_background(archive_factory, settings_with) -> None:
    settings = settings_with(audit_sample_rate=1.0, restore_cache_sweep_s=0.05)
    archive = archive_factory(settings)
    archive.upload()
    wait_for(lambda: archive.get("/v1/stats/quality").json()["totals"]["frames_measured"] == 1)
