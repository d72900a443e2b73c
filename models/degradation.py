"""The pinned degradation: what the archive does to a frame, and what the model learns to undo.

Ingest and training call the same functions here, so a model is trained on exactly the pixels the
archive stores. Everything that changes those pixels is part of `Profile.degradation_id`; a change
to any step must bump the version in that id.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

DEGRADATION_VERSION = "v1"
# WebP lossless effort levels as `cwebp -z` defines them: level -> (method, quality). Lossless,
# so every level decodes to the same pixels. Level 1 is ~9x faster than level 6 for ~6% more
# bytes on `cctv/val` (docs/storage.md, "Lossless encoder level"; benchmarks/ingest.py).
LOSSLESS_LEVELS: dict[int, tuple[int, int]] = {
    0: (0, 0),
    1: (1, 20),
    2: (2, 25),
    3: (3, 30),
    4: (3, 50),
    5: (4, 50),
    6: (4, 75),
    7: (4, 90),
    8: (5, 90),
    9: (6, 100),
}
DEFAULT_LOSSLESS_LEVEL = 1
# The operators' choices, by the rule in docs/storage.md (measured there): `evidence` keeps the
# downsampled pixels exactly; `balanced` and `compact` are lossy, each with its own model.
NAMED_PROFILES = {
    "evidence": "400:2:webp-lossless",
    "balanced": "400:2:webp-q90",
    "compact": "400:2:avif-q50",
    "fast": "400:2:webp-lossless:draft",
}
_CODEC = re.compile(r"^(png|webp-lossless|webp-q(\d{1,3})|jpeg-q(\d{1,3})|avif-q(\d{1,3}))$")


@dataclass(frozen=True)
class StoredFrame:
    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class Profile:
    """HR canonical size (None: the frame's own size, cropped to a multiple of the scale), the
    downsampling scale and the storage codec.

    `draft` profiles make the stored frame without the full-size picture: the decoder halves
    the upload when half is still at least the LR size (`reduction`): a JPEG by its scaled IDCT
    (Pillow's `draft`), any other image by a 2x2 box average after decoding; then one
    anti-aliased bicubic resize to the LR size. About half the image work of the full decode and
    two resizes (docs/speed.md); other pixels, so its own degradation id and its own model. The
    HR the model restores to is the same canonical frame.
    """

    hr_size: int | None = 400
    scale: int = 2
    codec: str = "webp-lossless"
    draft: bool = False

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4):
            raise ValueError(f"scale must be 2, 3 or 4, got {self.scale}")
        if self.hr_size is not None and (self.hr_size < self.scale or self.hr_size % self.scale):
            raise ValueError(f"hr_size {self.hr_size} must be a positive multiple of {self.scale}")
        match = _CODEC.match(self.codec)
        if not match:
            raise ValueError(
                f"unknown codec {self.codec!r}: use png, webp-lossless, webp-qN, jpeg-qN or avif-qN"
            )
        quality = match.group(2) or match.group(3) or match.group(4)
        if quality is not None and not 1 <= int(quality) <= 100:
            raise ValueError(f"codec quality must be 1..100, got {quality}")
        if self.draft and self.hr_size is None:
            raise ValueError("draft needs a fixed HR size (e.g. 400:2:webp-lossless:draft)")

    @classmethod
    def parse(cls, text: str) -> Profile:
        """'400:2:webp-lossless', 'native:2:png', '400:2:webp-lossless:draft', 'benchmark'
        (native, x2, png) or one of the operators' named profiles (`NAMED_PROFILES`)."""
        if text == "benchmark":
            return cls(hr_size=None, scale=2, codec="png")
        if text in NAMED_PROFILES:
            return cls.parse(NAMED_PROFILES[text])
        parts = text.split(":")
        draft = len(parts) == 4 and parts[3] == "draft"
        if len(parts) != 3 and not draft:
            raise ValueError(
                f"profile {text[:80]!r} is not HR_SIZE:SCALE:CODEC[:draft], e.g. "
                f"400:2:webp-lossless, nor a named profile ({', '.join(NAMED_PROFILES)})"
            )
        size, scale, codec = parts[:3]
        try:
            hr_size = None if size == "native" else int(size)
            return cls(hr_size=hr_size, scale=int(scale), codec=codec, draft=draft)
        except ValueError as exc:
            raise ValueError(f"profile {text!r}: {exc}") from exc

    def __str__(self) -> str:
        text = f"{self.hr_size or 'native'}:{self.scale}:{self.codec}"
        return text + ":draft" if self.draft else text

    @property
    def degradation_id(self) -> str:
        down = f"{'draft-' if self.draft else ''}bicubic-aa-x{self.scale}"
        return f"{down}/{self.codec}/{DEGRADATION_VERSION}"

    @property
    def lossless(self) -> bool:
        return self.codec in ("png", "webp-lossless")

    @property
    def extension(self) -> str:
        return self.codec.split("-")[0].replace("jpeg", "jpg")

    @property
    def media_type(self) -> str:
        return "image/" + self.codec.split("-")[0]

    @property
    def lr_size(self) -> tuple[int, int]:
        """The stored frame's size (fixed-size profiles only)."""
        if self.hr_size is None:
            raise ValueError("a native profile's LR size is the frame's own")
        return self.hr_size // self.scale, self.hr_size // self.scale

    def reduction(self, size: tuple[int, int]) -> int:
        """A draft profile's reduction for an upload of `size`: 2 when half of it still holds
        the LR frame, else 1. Never more: the decoder's 1/4 scaling cost 0.19 dB of bicubic
        PSNR-Y on the 1080p night frames of cctv/val-night, where 1/2 gained 0.05 (docs/speed.md).
        """
        lr_w, lr_h = self.lr_size
        return 2 if size[0] >= 2 * lr_w and size[1] >= 2 * lr_h else 1

    def start_draft(self, image: Image.Image) -> int:
        """Before `image` is loaded: ask a JPEG decoder for the draft reduction. Returns the
        factor the decoder will reduce by (1: it will not; `draft_lr` then reduces)."""
        if not self.draft or image.format != "JPEG":
            return 1
        full = image.size
        k = self.reduction(full)
        # Pillow picks the largest of 8, 4, 2, 1 at most min(W // w, H // h) of the size asked
        # for: asking for half the size gives 2.
        if k == 1 or image.draft(None, (full[0] // k, full[1] // k)) is None:
            return 1
        if image.size != ((full[0] + k - 1) // k, (full[1] + k - 1) // k):
            raise RuntimeError(f"the JPEG decoder reduced {full} to {image.size}, not by {k}")
        return k

    def draft_lr(
        self, image: Image.Image, full_size: tuple[int, int], reduced_by: int
    ) -> Image.Image:
        """A draft profile's LR frame from RGB `image`: the upload of `full_size`, decoded
        reduced by `reduced_by` (what `start_draft` returned)."""
        k = self.reduction(full_size)
        if reduced_by not in (1, k):
            raise ValueError(f"reduced by {reduced_by}, but the draft reduction is {k}")
        if reduced_by == 1 and k > 1:
            image = image.reduce(k)
        return image.resize(self.lr_size, Image.Resampling.BICUBIC)

    def canonicalise(self, image: Image.Image) -> Image.Image:
        """RGB at the profile's HR size (the study's 400x400), or modcropped at native size."""
        # Always a new image, but made once: an RGB input is resized or cropped directly, with
        # no intermediate copy (`convert` copies even when the mode is already RGB).
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        if self.hr_size is not None:
            size = (self.hr_size, self.hr_size)
            if rgb.size != size:
                return rgb.resize(size, Image.Resampling.BICUBIC)
            return rgb.copy() if rgb is image else rgb
        return modcrop(rgb, self.scale)

    def downsample(self, hr: Image.Image) -> Image.Image:
        """Bicubic (a=-0.5) with the kernel widened by the scale: anti-aliased, like MATLAB's
        imresize, which made the published benchmark LR images."""
        w, h = hr.size
        if w % self.scale or h % self.scale:
            raise ValueError(f"HR size {w}x{h} is not a multiple of scale {self.scale}")
        return hr.resize((w // self.scale, h // self.scale), Image.Resampling.BICUBIC)

    def encode(self, lr: Image.Image, *, lossless_level: int = DEFAULT_LOSSLESS_LEVEL) -> bytes:
        """The stored bytes of an LR frame. `lossless_level` (0-9, `cwebp -z`) is the WebP
        lossless encoder's effort: it changes the size and the time, never the pixels."""
        if lossless_level not in LOSSLESS_LEVELS:
            raise ValueError(f"lossless level must be 0..9, got {lossless_level}")
        out = io.BytesIO()
        kind, _, quality = self.codec.partition("-")
        if kind == "png":
            lr.save(out, format="PNG", optimize=False, compress_level=9)
        elif quality == "lossless":
            # Every level stores the same pixels; a level trades encoder time for bytes only.
            method, effort = LOSSLESS_LEVELS[lossless_level]
            lr.save(out, format="WEBP", lossless=True, quality=effort, method=method, exact=True)
        elif kind == "webp":
            lr.save(out, format="WEBP", quality=int(quality[1:]), method=4)
        elif kind == "avif":
            # Pinned explicitly (Pillow's defaults could change): libavif speed 6, 4:2:0 chroma.
            lr.save(out, format="AVIF", quality=int(quality[1:]), speed=6, subsampling="4:2:0")
        else:
            lr.save(out, format="JPEG", quality=int(quality[1:]), subsampling=0, optimize=True)
        return out.getvalue()

    def store(
        self, image: Image.Image, *, lossless_level: int = DEFAULT_LOSSLESS_LEVEL
    ) -> StoredFrame:
        """The whole ingest path from a decoded image: canonicalise, downsample, encode (a draft
        profile: reduce, resize, encode)."""
        if self.draft:
            rgb = image if image.mode == "RGB" else image.convert("RGB")
            return self.store_lr(self.draft_lr(rgb, rgb.size, 1), lossless_level=lossless_level)
        return self.store_canonical(self.canonicalise(image), lossless_level=lossless_level)

    def store_lr(
        self, lr: Image.Image, *, lossless_level: int = DEFAULT_LOSSLESS_LEVEL
    ) -> StoredFrame:
        """The stored frame of LR frame `lr`."""
        return StoredFrame(self.encode(lr, lossless_level=lossless_level), *lr.size)

    def store_canonical(
        self, hr: Image.Image, *, lossless_level: int = DEFAULT_LOSSLESS_LEVEL
    ) -> StoredFrame:
        """`store` for an image already canonical (what `canonicalise` returned)."""
        return self.store_lr(self.downsample(hr), lossless_level=lossless_level)

    def degrade(self, hr: Image.Image) -> np.ndarray:
        """The LR pixels the archive would store for this canonical HR image (HxWx3 uint8)."""
        if self.draft:
            raise ValueError("a draft profile's LR is made from the upload, not the HR frame")
        return self.round_trip(self.downsample(hr))

    def round_trip(self, lr: Image.Image) -> np.ndarray:
        """The pixels the stored bytes of LR frame `lr` decode to (HxWx3 uint8)."""
        if self.lossless:  # a lossless codec gives back these very pixels; skip the round trip
            return np.asarray(lr, dtype=np.uint8)
        return decode_image(self.encode(lr))


def same_pixels(a: str, b: str) -> bool:
    """Whether frames degraded as `a` and as `b` hold the same pixels, so a model trained on one
    restores the other as it was measured: the same id, or two lossless codecs after the same
    downsampler (PNG and WebP lossless store identical pixels)."""
    if a == b:
        return True
    (down_a, codec_a, version_a), (down_b, codec_b, version_b) = a.split("/"), b.split("/")
    lossless = {"png", "webp-lossless"}
    return down_a == down_b and version_a == version_b and {codec_a, codec_b} <= lossless


def modcrop(image: Image.Image, scale: int) -> Image.Image:
    w, h = image.size
    return image.crop((0, 0, w - w % scale, h - h % scale))


def decode_image(data: bytes) -> np.ndarray:
    """Decode stored bytes to an HxWx3 uint8 RGB array."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def bicubic_upscale(frame: np.ndarray, scale: int) -> np.ndarray:
    """The plain interpolation examiners compare against (same kernel as the downsampler)."""
    h, w = frame.shape[:2]
    image = Image.fromarray(frame).resize((w * scale, h * scale), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)
