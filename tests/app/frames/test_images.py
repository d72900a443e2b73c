"""Format sniffing and the header-first size check, below the API."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from app.errors import CorruptImage, ImageTooLarge, UnsupportedMediaType
from app.frames.images import allow_pixels, open_upload, sniff_format
from tests.app.images import image_bytes

ALL = ("jpeg", "png", "webp", "bmp", "avif")


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("BMP", "bmp"), ("AVIF", "avif")],
)
def test_sniff_recognises_each_allowed_format(fmt: str, name: str) -> None:
    assert sniff_format(image_bytes(fmt, width=16, height=16)) == name


@pytest.mark.parametrize(
    "data",
    [b"", b"RIFF\0\0\0\0WAVE", b"GIF89a", b"\xff\xd8", b"\0\0\0\x18ftypheic\0\0\0\0"],
)
def test_sniff_refuses_everything_else(data: bytes) -> None:
    assert sniff_format(data) is None


def test_open_upload_returns_a_fully_decoded_image() -> None:
    image, fmt = open_upload(image_bytes("WEBP", 48, 32), allowed=ALL, max_pixels=10_000)
    assert fmt == "webp"
    assert image.size == (48, 32)
    assert image.getpixel((0, 0)) is not None


def test_avif_upload_decodes_to_its_pixels() -> None:
    image, fmt = open_upload(image_bytes("AVIF", 64, 48), allowed=ALL, max_pixels=10_000)
    assert (fmt, image.size, image.mode) == ("avif", (64, 48), "RGB")


def test_animated_avif_is_refused_not_cut_to_its_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue")]
    out = io.BytesIO()
    frames[0].save(out, format="AVIF", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(UnsupportedMediaType, match="animated AVIF"):
        open_upload(out.getvalue(), allowed=ALL, max_pixels=10_000)


def test_size_limit_is_checked_on_the_header() -> None:
    with pytest.raises(ImageTooLarge, match="48x32"):
        open_upload(image_bytes("PNG", 48, 32), allowed=ALL, max_pixels=48 * 32 - 1)


def test_disallowed_format_is_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType):
        open_upload(image_bytes("BMP", 8, 8), allowed=("png",), max_pixels=100)


def test_truncated_jpeg_is_corrupt() -> None:
    data = image_bytes("JPEG", 200, 150)
    with pytest.raises(CorruptImage):
        open_upload(data[:-500], allowed=ALL, max_pixels=10**6)


def test_allow_pixels_only_ever_raises_pillows_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    allow_pixels(500)
    assert Image.MAX_IMAGE_PIXELS == 1000
    allow_pixels(5000)
    assert Image.MAX_IMAGE_PIXELS == 5000
