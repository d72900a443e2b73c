"""Every image mode Pillow can open becomes the 8-bit RGB a person would see: samples scaled, not
clipped; transparency over white; EXIF orientation applied and recorded; animations refused.

Each expectation is computed here with numpy from the samples the test wrote, never by the code
under test."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.errors import UnsupportedMediaType
from app.frames.images import decode_upload, to_rgb8
from tests.app.conftest import Archive
from tests.app.images import decode, scene

ALL = ("jpeg", "png", "webp", "bmp")
W, H = 64, 48


def ramp16() -> np.ndarray:
    """A 16-bit ramp over the whole 0..65535 range (the case clipping at 255 ruins)."""
    return np.linspace(0, 65535, W * H).round().astype(np.uint16).reshape(H, W)


def grey_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=-1)


def scaled16(samples: np.ndarray) -> np.ndarray:
    """The reference conversion of 16-bit samples: v * 255 / 65535, rounded."""
    return np.rint(np.clip(samples.astype(np.float64), 0, 65535) * 255 / 65535).astype(np.uint8)


def over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The reference alpha composite over an opaque white background."""
    a = alpha.astype(np.float64)[..., None] / 255
    return np.rint(rgb.astype(np.float64) * a + 255 * (1 - a)).astype(np.uint8)


def assert_close(image: Image.Image, expected: np.ndarray, tolerance: int = 1) -> None:
    assert image.mode == "RGB"
    got = np.asarray(image).astype(int)
    assert got.shape == expected.shape
    assert np.abs(got - expected.astype(int)).max() <= tolerance


def png(image: Image.Image, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", **options)
    return out.getvalue()


@pytest.mark.parametrize("mode", ["I;16", "I;16L", "I;16B", "I;16N", "I"])
def test_16_bit_samples_are_scaled_not_clipped(mode: str) -> None:
    samples = ramp16()
    dtype = {"I;16B": ">u2", "I": "<i4"}.get(mode, "<u2")
    image = Image.frombytes(mode, (W, H), samples.astype(dtype).tobytes())
    assert_close(to_rgb8(image), grey_rgb(scaled16(samples)), tolerance=0)


def test_float_samples_are_read_on_the_16_bit_scale_and_out_of_range_ones_saturate() -> None:
    samples = np.linspace(-1000, 70000, W * H, dtype=np.float32).reshape(H, W)
    image = Image.fromarray(samples, mode="F")
    assert_close(to_rgb8(image), grey_rgb(scaled16(np.rint(samples))), tolerance=0)


def test_a_16_bit_greyscale_png_upload_keeps_its_tones() -> None:
    samples = ramp16()
    data = png(Image.fromarray(samples))
    decoded = decode_upload(data, allowed=ALL, max_pixels=10**6)
    assert_close(decoded.image, grey_rgb(scaled16(samples)), tolerance=0)
    # A mid-grey 16-bit sample is mid-grey, not white.
    assert 120 <= np.asarray(decoded.image)[H // 2, W // 2, 0] <= 135


def test_8_bit_greyscale_is_repeated_into_three_channels() -> None:
    grey = scene(W, H)[..., 0]
    assert_close(to_rgb8(Image.fromarray(grey, mode="L")), grey_rgb(grey), tolerance=0)


def test_greyscale_with_alpha_is_composited_over_white() -> None:
    grey, alpha = scene(W, H)[..., 0], scene(W, H, seed=3)[..., 1]
    image = Image.fromarray(np.stack([grey, alpha], axis=-1), mode="LA")
    decoded = decode_upload(png(image), allowed=ALL, max_pixels=10**6)
    assert_close(decoded.image, over_white(grey_rgb(grey), alpha))


def test_rgba_is_composited_over_white() -> None:
    rgb, alpha = scene(W, H), scene(W, H, seed=4)[..., 0]
    image = Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA")
    decoded = decode_upload(png(image), allowed=ALL, max_pixels=10**6)
    assert_close(decoded.image, over_white(rgb, alpha))


def test_palette_with_a_transparent_index_shows_white_there() -> None:
    indices = (np.arange(W * H) % 4).astype(np.uint8).reshape(H, W)
    colours = [(200, 10, 10), (10, 200, 10), (10, 10, 200), (0, 0, 0)]
    image = Image.fromarray(indices, mode="P")
    image.putpalette([c for colour in colours for c in colour])
    data = png(image, transparency=3)  # index 3 (black) is fully transparent
    decoded = decode_upload(data, allowed=ALL, max_pixels=10**6)
    lookup = np.array([*colours[:3], (255, 255, 255)], dtype=np.uint8)
    assert_close(decoded.image, lookup[indices], tolerance=0)


def test_palette_with_partial_alpha_is_composited_over_white() -> None:
    indices = (np.arange(W * H) % 3).astype(np.uint8).reshape(H, W)
    colours = np.array([(200, 10, 10), (10, 200, 10), (10, 10, 200)], dtype=np.uint8)
    alphas = np.array([255, 128, 0], dtype=np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette(colours.flatten().tolist())
    data = png(image, transparency=bytes(alphas))
    decoded = decode_upload(data, allowed=ALL, max_pixels=10**6)
    assert_close(decoded.image, over_white(colours[indices], alphas[indices]))


def test_cmyk_uses_the_subtractive_model() -> None:
    cmyk = np.dstack([scene(W, H, seed=s)[..., s % 3] for s in range(4)])
    image = Image.fromarray(cmyk, mode="CMYK")
    c, m, y, k = (cmyk[..., i].astype(np.float64) for i in range(4))
    expected = np.stack([(255 - x) * (255 - k) / 255 for x in (c, m, y)], axis=-1)
    assert_close(to_rgb8(image), np.rint(expected))


def test_a_cmyk_jpeg_upload_is_stored_as_rgb() -> None:
    cmyk = np.zeros((H, W, 4), dtype=np.uint8)
    cmyk[..., 1] = 255  # pure magenta ink: red and blue stay, green goes
    out = io.BytesIO()
    Image.fromarray(cmyk, mode="CMYK").save(out, format="JPEG", quality=100)
    decoded = decode_upload(out.getvalue(), allowed=ALL, max_pixels=10**6)
    expected = np.broadcast_to(np.array([255, 0, 255], dtype=np.uint8), (H, W, 3))
    assert_close(decoded.image, expected, tolerance=3)


def test_bilevel_is_black_and_white() -> None:
    bits = (scene(W, H)[..., 0] > 128).astype(np.uint8) * 255
    image = Image.fromarray(bits, mode="L").convert("1", dither=Image.Dither.NONE)
    assert_close(to_rgb8(image), grey_rgb(bits), tolerance=0)


def test_rgb_passes_through_unchanged() -> None:
    rgb = scene(W, H)
    decoded = decode_upload(png(Image.fromarray(rgb)), allowed=ALL, max_pixels=10**6)
    assert_close(decoded.image, rgb, tolerance=0)
    assert decoded.exif_orientation is None


def exif_jpeg(pixels: np.ndarray, orientation: int) -> bytes:
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=100, subsampling=0, exif=exif.tobytes())
    return out.getvalue()


# EXIF orientation -> how the stored pixels relate to the encoded ones (numpy, not Pillow).
ORIENTATIONS = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # across the anti-diagonal
    8: lambda a: np.rot90(a, k=1),
}


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_exif_orientation_is_applied_and_recorded(orientation: int) -> None:
    pixels = np.zeros((H, W, 3), dtype=np.uint8)
    pixels[: H // 2, : W // 4] = (250, 0, 0)  # a red block in the top-left corner as encoded
    pixels[H // 2 :, W // 2 :] = (0, 0, 250)  # a blue block bottom-right
    decoded = decode_upload(exif_jpeg(pixels, orientation), allowed=ALL, max_pixels=10**6)
    assert decoded.exif_orientation == orientation
    assert (decoded.width, decoded.height) == (W, H)
    expected = np.ascontiguousarray(ORIENTATIONS[orientation](pixels))
    assert_close(decoded.image, expected, tolerance=8)


def test_upright_exif_orientation_is_not_recorded_as_applied() -> None:
    decoded = decode_upload(exif_jpeg(scene(W, H), 1), allowed=ALL, max_pixels=10**6)
    assert decoded.exif_orientation is None


def animated(fmt: str) -> bytes:
    frames = [Image.fromarray(scene(W, H, seed=s)) for s in range(3)]
    out = io.BytesIO()
    frames[0].save(out, format=fmt, save_all=True, append_images=frames[1:], duration=100)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "kind"), [("WEBP", "WEBP"), ("PNG", "APNG")])
def test_animated_images_are_refused_saying_why(fmt: str, kind: str) -> None:
    with pytest.raises(UnsupportedMediaType, match=f"animated {kind} images are not accepted"):
        decode_upload(animated(fmt), allowed=ALL, max_pixels=10**6)


@pytest.mark.parametrize("fmt", ["WEBP", "PNG", "GIF"])
def test_animated_upload_is_415_and_leaves_nothing(archive: Archive, fmt: str) -> None:
    response = archive.upload(animated(fmt))
    assert response.status_code == 415
    message = response.json()["error"]["message"]
    assert (
        ("animated" in message)
        if fmt != "GIF"
        else ("not a JPEG, PNG, WebP, BMP or AVIF" in message)
    )
    assert archive.count("frames") == 0 and archive.blobs() == []


def test_a_16_bit_png_upload_is_stored_with_its_tones(archive: Archive) -> None:
    samples = np.full((H, W), 32768, dtype=np.uint16)  # mid-grey
    frame_id = archive.frame_id(png(Image.fromarray(samples)))
    stored = np.asarray(decode(archive.get(f"/v1/frames/{frame_id}/stored").content))
    assert np.abs(stored.astype(int) - 128).max() <= 1


def test_an_oriented_jpeg_upload_is_stored_upright_and_says_so(archive: Archive) -> None:
    pixels = np.zeros((H, W, 3), dtype=np.uint8)
    pixels[:, : W // 2] = (250, 250, 250)  # left half white as encoded; after 6 (90° cw), top
    response = archive.upload(exif_jpeg(pixels, 6))
    assert response.status_code == 201, response.text
    frame = response.json()
    assert frame["exif_orientation"] == 6
    stored = np.asarray(decode(archive.get(f"/v1/frames/{frame['id']}/stored").content))
    size = stored.shape[0]
    assert stored[: size // 2 - 4].mean() > 200 and stored[size // 2 + 4 :].mean() < 50
    plain = archive.upload(exif_jpeg(pixels, 1)).json()
    assert plain["exif_orientation"] is None
