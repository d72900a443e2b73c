import math

import numpy as np

from models.metrics import psnr, psnr_y, rgb_to_y, ssim_y


def test_bt601_luma_of_black_and_white() -> None:
    pixels = np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(pixels), [[16.0, 235.0]], atol=1e-9)


def test_psnr_of_a_known_error() -> None:
    a = np.zeros((10, 10), dtype=np.uint8)
    b = np.full((10, 10), 5, dtype=np.uint8)  # MSE 25
    assert math.isclose(psnr(a, b), 10 * math.log10(255**2 / 25))
    assert psnr(a, a) == math.inf


def test_border_is_shaved_before_measuring() -> None:
    hr = np.full((20, 20, 3), 100, dtype=np.uint8)
    sr = hr.copy()
    sr[:2] = 0  # damage only the 2-pixel border
    assert psnr_y(sr, hr, border=2) == math.inf
    assert psnr_y(sr, hr, border=1) < 40


def test_ssim_is_one_for_identical_images_and_lower_for_noise() -> None:
    rng = np.random.default_rng(0)
    hr = np.repeat(np.linspace(40, 200, 40), 40 * 3).reshape(40, 40, 3).astype(np.uint8)
    noisy = np.clip(hr.astype(int) + rng.integers(-30, 30, hr.shape), 0, 255).astype(np.uint8)
    assert math.isclose(ssim_y(hr, hr, 2), 1.0)
    assert ssim_y(noisy, hr, 2) < 0.95
