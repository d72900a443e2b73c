"""EDSR (Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution", 2017).

The network as published: RGB mean shift, head conv, `n_resblocks` residual blocks without batch
norm (conv-ReLU-conv scaled by `res_scale`), body conv with a global skip, a sub-pixel upsampler and
a tail conv. Inputs and outputs are RGB in [0, 255] (float), as in the reference implementation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

# DIV2K RGB mean, used by the reference implementation; kept so published recipes transfer as-is.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


@dataclass(frozen=True)
class EDSRConfig:
    scale: int = 2
    n_resblocks: int = 16
    n_feats: int = 64
    res_scale: float = 1.0
    rgb_range: float = 255.0

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4):
            raise ValueError(f"scale must be 2, 3 or 4, got {self.scale}")
        if self.n_resblocks < 1 or self.n_feats < 1:
            raise ValueError("n_resblocks and n_feats must be positive")

    @property
    def layers(self) -> int:
        """Convolution layers, the way the study counted depth (2 per block + head, body, tail)."""
        return 2 * self.n_resblocks + 3

    @classmethod
    def from_layers(cls, layers: int, **kwargs: object) -> EDSRConfig:
        """The study swept 25..60 "layers"; map a layer count to the nearest block count."""
        return cls(n_resblocks=max(1, round((layers - 3) / 2)), **kwargs)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


class ResBlock(nn.Module):
    def __init__(self, n_feats: int, res_scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_feats, n_feats, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(n_feats, n_feats, 3, padding=1),
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class Upsampler(nn.Sequential):
    """Sub-pixel convolution: x2 and x4 as one or two (conv, PixelShuffle(2)) stages, x3 as one."""

    def __init__(self, scale: int, n_feats: int) -> None:
        layers: list[nn.Module] = []
        if scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(n_feats, 4 * n_feats, 3, padding=1), nn.PixelShuffle(2)]
        else:
            layers += [nn.Conv2d(n_feats, 9 * n_feats, 3, padding=1), nn.PixelShuffle(3)]
        super().__init__(*layers)


class EDSR(nn.Module):
    def __init__(self, config: EDSRConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        # The mean is a constant, not a parameter: a buffer is saved with the weights and loaded
        # strictly like everything else, but the optimiser never sees it.
        rgb_mean = torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1) * c.rgb_range
        self.register_buffer("rgb_mean", rgb_mean)
        self.head = nn.Conv2d(3, c.n_feats, 3, padding=1)
        self.body = nn.Sequential(
            *[ResBlock(c.n_feats, c.res_scale) for _ in range(c.n_resblocks)],
            nn.Conv2d(c.n_feats, c.n_feats, 3, padding=1),
        )
        self.tail = nn.Sequential(
            Upsampler(c.scale, c.n_feats),
            nn.Conv2d(c.n_feats, 3, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, rgb_range] -> (N, 3, H*scale, W*scale), unclamped."""
        x = self.head(x - self.rgb_mean)
        x = x + self.body(x)
        x = self.tail(x)
        return x + self.rgb_mean
