"""The restoration model: EDSR, the pinned degradation, training, evaluation, inference.

Needs only torch, numpy and Pillow (plus safetensors and tqdm); never imports app/ or worker/.
Names are imported on first use, so that what needs only the degradation (`Profile`: the
`serve --workers` supervisor, ingest) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.checkpoint import ModelInfo, load_model, save_model
    from models.degradation import (
        Profile,
        StoredFrame,
        bicubic_upscale,
        decode_image,
        same_pixels,
    )
    from models.edsr import EDSR, EDSRConfig
    from models.restorer import Restorer

# Each public name and the module that defines it.
_HOMES = {
    "EDSR": "models.edsr",
    "EDSRConfig": "models.edsr",
    "ModelInfo": "models.checkpoint",
    "Profile": "models.degradation",
    "Restorer": "models.restorer",
    "StoredFrame": "models.degradation",
    "bicubic_upscale": "models.degradation",
    "decode_image": "models.degradation",
    "load_model": "models.checkpoint",
    "same_pixels": "models.degradation",
    "save_model": "models.checkpoint",
}

__all__ = [
    "EDSR",
    "EDSRConfig",
    "ModelInfo",
    "Profile",
    "Restorer",
    "StoredFrame",
    "bicubic_upscale",
    "decode_image",
    "load_model",
    "same_pixels",
    "save_model",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # looked up once
    return value
