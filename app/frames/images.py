"""Checking an uploaded image before anything is stored: format by content, size, full decode,
then the upright 8-bit RGB picture a person would see."""

from __future__ import annotations

import io
import warnings
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from app.errors import CorruptImage, ImageTooLarge, UnsupportedMediaType
from models.degradation import Profile

# Our format names -> Pillow's, so Image.open tries only the format the bytes claim to be.
PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "bmp": "BMP", "avif": "AVIF"}
# ISO BMFF brands of AVIF stills and sequences (an animated AVIF is refused like any other).
AVIF_BRANDS = (b"avif", b"avis")
# Modes holding more than 8 bits per sample. Pillow opens 16-bit greyscale PNGs as I;16 (older
# versions as I); I and F are read on the same 0..65535 scale.
WIDE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
EXIF_ORIENTATION = 0x0112
# Transparent pixels are shown over white, as a browser or image viewer shows them on a page.
BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class DecodedUpload:
    """An upload decoded and made ready for the profile."""

    image: Image.Image  # 8-bit RGB, upright (EXIF orientation applied)
    format: str  # jpeg, png, webp, bmp or avif, by content
    width: int  # as encoded in the file, before any rotation
    height: int
    exif_orientation: int | None  # the EXIF orientation applied (2-8); None: already upright
    reduced_by: int = 1  # decoded at 1/reduced_by of its size (a draft profile's JPEG)

    @property
    def upright_size(self) -> tuple[int, int]:
        """The upload's full size once upright (orientations 5-8 turn it a quarter)."""
        turned = self.exif_orientation in (5, 6, 7, 8)
        return (self.height, self.width) if turned else (self.width, self.height)


def sniff_format(data: bytes) -> str | None:
    """The image format by magic bytes (never by file name or client Content-Type)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"BM"):
        return "bmp"
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in AVIF_BRANDS:
        return "avif"
    return None


def open_upload(
    data: bytes, *, allowed: Collection[str], max_pixels: int
) -> tuple[Image.Image, str]:
    """Decode `data` fully, refusing what is not an allowed image, is too big, or is damaged.

    The pixel count is read from the header, before any pixel is decoded: a small file can
    declare a huge image (a decompression bomb).
    """
    opened = _open_checked(data, allowed=allowed, max_pixels=max_pixels, draft=None)
    return opened.image, opened.format


def decode_upload(
    data: bytes, *, allowed: Collection[str], max_pixels: int, draft: Profile | None = None
) -> DecodedUpload:
    """`open_upload`, then the EXIF orientation applied and every mode made 8-bit RGB.

    With a `draft` profile a JPEG is decoded reduced, as that profile's degradation starts
    (`Profile.start_draft`); every coefficient is still decoded, so damage is still found."""
    opened = _open_checked(data, allowed=allowed, max_pixels=max_pixels, draft=draft)
    image = opened.image
    orientation = image.getexif().get(EXIF_ORIENTATION)
    applied = orientation if orientation in range(2, 9) else None
    if applied is not None:
        image = ImageOps.exif_transpose(image)
    return DecodedUpload(
        to_rgb8(image), opened.format, opened.width, opened.height, applied, opened.reduced_by
    )


@dataclass(frozen=True)
class _Opened:
    image: Image.Image
    format: str
    width: int  # from the header: the size before any draft reduction
    height: int
    reduced_by: int


def _open_checked(
    data: bytes, *, allowed: Collection[str], max_pixels: int, draft: Profile | None
) -> _Opened:
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedMediaType("the file is not a JPEG, PNG, WebP, BMP or AVIF image")
    if fmt not in allowed:
        raise UnsupportedMediaType(
            f"{fmt.upper()} images are not accepted here (allowed: {', '.join(sorted(allowed))})"
        )
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    image = _open(data, fmt, max_pixels)
    if getattr(image, "n_frames", 1) > 1:
        # Archiving only the first frame would drop the rest without a word.
        kind = "APNG" if fmt == "png" else fmt.upper()
        raise UnsupportedMediaType(
            f"animated {kind} images are not accepted: the archive stores single frames; "
            "send each frame as its own upload"
        )
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image is {width}x{height} ({width * height} pixels); the limit is {max_pixels}"
        )
    try:
        # verify() checks what load() may skip (PNG chunk CRCs); it consumes the image object.
        image.verify()
        image = _open(data, fmt, max_pixels)
        reduced_by = 1 if draft is None else draft.start_draft(image)
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImage(f"the {fmt.upper()} image is truncated or corrupt: {exc}") from exc
    return _Opened(image, fmt, width, height, reduced_by)


def to_rgb8(image: Image.Image) -> Image.Image:
    """8-bit RGB, with samples scaled (never clipped) to 0..255 and transparency shown over
    white. Pillow's own `convert("RGB")` clips 16-bit samples at 255, which turns a 16-bit
    greyscale frame almost white."""
    if image.mode in WIDE_MODES:
        samples = np.asarray(image)
        if image.mode == "F":
            samples = np.rint(np.clip(np.nan_to_num(samples), 0, 65535)).astype(np.uint32)
        else:
            samples = np.clip(samples, 0, 65535).astype(np.uint32)
        grey = ((samples * 255 + 32767) // 65535).astype(np.uint8)  # rounded v * 255 / 65535
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "La":  # premultiplied alpha; Pillow converts it only to LA
        image = image.convert("LA")
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    # A decoded upload is this call's own: an RGB one is returned as it is, not copied.
    return image if image.mode == "RGB" else image.convert("RGB")


def _open(data: bytes, fmt: str, max_pixels: int) -> Image.Image:
    # Pillow's own bomb check (a warning past MAX_IMAGE_PIXELS, an error past twice that) would
    # pre-empt ours with a less useful message; ours runs on the header size just after.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data), formats=[PIL_FORMATS[fmt]])
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(f"image is over the {max_pixels} pixel limit") from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
            raise CorruptImage(f"the {fmt.upper()} header is unreadable: {exc}") from exc


def allow_pixels(max_pixels: int) -> None:
    """Raise Pillow's process-wide bomb limit to at least `max_pixels`, so images our own limit
    accepts are never refused by Pillow's."""
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


def encode_png(image: Image.Image) -> bytes:
    """Lossless PNG at zlib level 1: on 400x400 CCTV frames as small as level 6 (262 against
    260 kB) in a third of the time (19 against 54 ms), and every level holds the same pixels."""
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()
