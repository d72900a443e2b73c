"""The restoration model: EDSR, the pinned degradation, training, evaluation, inference.

Needs only torch, numpy and Pillow (plus safetensors and tqdm); never imports app/ or worker/.
"""

from models.checkpoint import ModelInfo, load_model, save_model
from models.degradation import Profile, StoredFrame, bicubic_upscale, decode_image, same_pixels
from models.edsr import EDSR, EDSRConfig
from models.restorer import Restorer

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
