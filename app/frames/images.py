"""Checking an uploaded image before anything is stored: format by content, size, full decode."""

from __future__ import annotations

import io
import warnings
from collections.abc import Collection

from PIL import Image, ImageFile, UnidentifiedImageError

from app.errors import CorruptImage, ImageTooLarge, UnsupportedMediaType

# Our format names -> Pillow's, so Image.open tries only the format the bytes claim to be.
PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "bmp": "BMP"}


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
    return None


def open_upload(
    data: bytes, *, allowed: Collection[str], max_pixels: int
) -> tuple[Image.Image, str]:
    """Decode `data` fully, refusing what is not an allowed image, is too big, or is damaged.

    The pixel count is read from the header, before any pixel is decoded: a small file can
    declare a huge image (a decompression bomb).
    """
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedMediaType("the file is not a JPEG, PNG, WebP or BMP image")
    if fmt not in allowed:
        raise UnsupportedMediaType(
            f"{fmt.upper()} images are not accepted here (allowed: {', '.join(sorted(allowed))})"
        )
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    image = _open(data, fmt, max_pixels)
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image is {width}x{height} ({width * height} pixels); the limit is {max_pixels}"
        )
    try:
        # verify() checks what load() may skip (PNG chunk CRCs); it consumes the image object.
        image.verify()
        image = _open(data, fmt, max_pixels)
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImage(f"the {fmt.upper()} image is truncated or corrupt: {exc}") from exc
    return image, fmt


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
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=6)
    return out.getvalue()
