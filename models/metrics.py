"""Image quality as the published super-resolution tables measure it.

PSNR on the Y channel of ITU-R BT.601 YCbCr, after shaving `border` pixels (the scale) from each
side; RGB PSNR; SSIM on Y with the usual 11x11 Gaussian window (sigma 1.5).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

_BT601 = np.array([65.481, 128.553, 24.966]) / 255.0


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """HxWx3 RGB in [0, 255] -> HxW float64 luma in [16, 235] (BT.601, studio range)."""
    return 16.0 + image.astype(np.float64) @ _BT601


def shave(image: np.ndarray, border: int) -> np.ndarray:
    return image[border:-border, border:-border] if border else image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def psnr_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    return psnr(shave(rgb_to_y(sr), border), shave(rgb_to_y(hr), border))


def psnr_rgb(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    return psnr(shave(sr, border), shave(hr, border))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    return (g[:, None] @ g[None, :]).view(1, 1, size, size)


def ssim_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """Mean SSIM (Wang et al. 2004) on the Y channel, valid window positions only."""
    x = torch.from_numpy(shave(rgb_to_y(sr), border))[None, None]
    y = torch.from_numpy(shave(rgb_to_y(hr), border))[None, None]
    window = _gaussian_window()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = F.conv2d(x, window), F.conv2d(y, window)
    var_x = F.conv2d(x * x, window) - mu_x**2
    var_y = F.conv2d(y * y, window) - mu_y**2
    cov = F.conv2d(x * y, window) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return float(ssim_map.mean())
