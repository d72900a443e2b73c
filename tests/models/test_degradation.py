from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.data import make_pair
from models.degradation import (
    DEFAULT_LOSSLESS_LEVEL,
    LOSSLESS_LEVELS,
    Profile,
    bicubic_upscale,
    decode_image,
)
from tests.models.conftest import scene

CODECS = ["png", "webp-lossless", "webp-q90", "jpeg-q75", "avif-q50"]


def test_default_profile_is_the_studys_400_to_200() -> None:
    stored = Profile().store(Image.fromarray(scene(300, 500)))
    assert (stored.width, stored.height) == (200, 200)
    assert decode_image(stored.data).shape == (200, 200, 3)
    assert Profile().degradation_id == "bicubic-aa-x2/webp-lossless/v1"


@pytest.mark.parametrize("codec", CODECS)
def test_store_is_deterministic(codec: str) -> None:
    profile = Profile(codec=codec)
    image = Image.fromarray(scene())
    assert profile.store(image).data == profile.store(image).data


@pytest.mark.parametrize("codec", CODECS)
def test_training_sees_exactly_the_pixels_ingest_stores(codec: str, tmp_path: Path) -> None:
    profile = Profile(codec=codec)
    path = tmp_path / "frame.png"
    Image.fromarray(scene(seed=3)).save(path)
    with Image.open(path) as image:
        stored = decode_image(profile.store(image).data)  # the ingest path
    pair = make_pair(path, profile)  # the training path
    np.testing.assert_array_equal(stored, pair.lr)
    assert pair.hr.shape == (400, 400, 3)


def test_native_profile_modcrops_instead_of_resizing() -> None:
    profile = Profile(hr_size=None, scale=3, codec="png")
    hr = profile.canonicalise(Image.fromarray(scene(121, 160)))
    assert hr.size == (159, 120)
    assert profile.store(hr).width == 53


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
@pytest.mark.parametrize("size", [(400, 400), (640, 360)])
def test_canonicalise_gives_a_new_image_with_convert_then_resize_pixels(
    mode: str, size: tuple[int, int], tmp_path: Path
) -> None:
    # RGB input skips `convert`'s copy; the pixels must be those of convert-then-resize, and the
    # result must outlive the file it came from.
    path = tmp_path / "frame.png"
    Image.fromarray(scene(size[1], size[0], seed=7)).convert(mode).save(path)
    with Image.open(path) as image:
        expected = image.convert("RGB")
        if expected.size != (400, 400):
            expected = expected.resize((400, 400), Image.Resampling.BICUBIC)
        hr = Profile().canonicalise(image)
        assert hr is not image
    assert hr.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(hr), np.asarray(expected))


def test_lossy_codecs_change_pixels_and_lossless_do_not() -> None:
    hr = Profile().canonicalise(Image.fromarray(scene()))
    reference = np.asarray(Profile().downsample(hr))
    assert np.array_equal(
        decode_image(Profile(codec="png").encode(Profile().downsample(hr))), reference
    )
    assert not np.array_equal(Profile(codec="jpeg-q75").degrade(hr), reference)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("400:2:webp-lossless", Profile()),
        ("native:4:jpeg-q90", Profile(hr_size=None, scale=4, codec="jpeg-q90")),
        ("400:2:avif-q50", Profile(codec="avif-q50")),
        ("benchmark", Profile(hr_size=None, scale=2, codec="png")),
        ("400:2:webp-lossless:draft", Profile(draft=True)),
        ("fast", Profile(draft=True)),
    ],
)
def test_profile_parses_its_text_form(text: str, expected: Profile) -> None:
    assert Profile.parse(text) == expected
    assert Profile.parse(str(expected)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("400:2", "HR_SIZE:SCALE:CODEC"),
        ("400:5:png", "scale"),
        ("400:2:gif", "unknown codec"),
        ("401:2:png", "multiple"),
        ("400:2:jpeg-q0", "quality"),
        ("400:2:avif-q101", "quality"),
        ("400:2:avif-lossless", "unknown codec"),
        ("400:2:png:fast", "HR_SIZE:SCALE:CODEC"),
        ("native:2:png:draft", "fixed HR size"),
    ],
)
def test_bad_profiles_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Profile.parse(text)


def test_bicubic_upscale_restores_the_size() -> None:
    assert bicubic_upscale(scene(50, 70), 3).shape == (150, 210, 3)


def test_lossless_codecs_hold_the_same_pixels_and_lossy_ones_do_not() -> None:
    from models.degradation import same_pixels

    webp, png = Profile().degradation_id, Profile(codec="png").degradation_id
    assert same_pixels(webp, png) and same_pixels(webp, webp)
    assert not same_pixels(webp, Profile(codec="jpeg-q90").degradation_id)
    assert not same_pixels(webp, Profile(scale=4, hr_size=400).degradation_id)


def test_avif_is_stored_as_avif_and_lossy() -> None:
    profile = Profile(codec="avif-q50")
    stored = profile.store(Image.fromarray(scene()))
    assert stored.data[4:12] == b"ftypavif"
    assert (profile.media_type, profile.extension, profile.lossless) == (
        "image/avif",
        "avif",
        False,
    )
    assert profile.degradation_id == "bicubic-aa-x2/avif-q50/v1"
    # Quality is the knob: fewer bytes, further from the lossless pixels.
    hr = Profile().canonicalise(Image.fromarray(scene()))
    reference = np.asarray(Profile().downsample(hr), dtype=np.float64)
    errors = {
        q: np.abs(Profile(codec=f"avif-q{q}").degrade(hr) - reference).mean() for q in (30, 90)
    }
    sizes = {q: len(Profile(codec=f"avif-q{q}").store(hr).data) for q in (30, 90)}
    assert errors[30] > errors[90] > 0 and sizes[30] < sizes[90]


def test_named_profiles_are_aliases_of_measured_choices() -> None:
    from models.degradation import NAMED_PROFILES

    assert Profile.parse("evidence") == Profile()  # lossless: the downsampled pixels, exactly
    for name, text in NAMED_PROFILES.items():
        assert Profile.parse(name) == Profile.parse(text)
    with pytest.raises(ValueError, match="nor a named profile \\(evidence"):
        Profile.parse("cheap")


def test_every_lossless_level_keeps_the_pixels_and_trades_bytes() -> None:
    lr = Profile().downsample(Profile().canonicalise(Image.fromarray(scene(seed=5))))
    sizes = {}
    for level in LOSSLESS_LEVELS:
        if level == 9:
            continue  # seconds per frame; same code path as 8 with other numbers
        data = Profile().encode(lr, lossless_level=level)
        np.testing.assert_array_equal(decode_image(data), np.asarray(lr))
        sizes[level] = len(data)
    assert sizes[8] < sizes[0]  # more effort, fewer bytes
    assert Profile().encode(lr) == Profile().encode(lr, lossless_level=DEFAULT_LOSSLESS_LEVEL)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        Profile().encode(lr, lossless_level=10)


def test_the_service_default_level_is_the_models_default() -> None:
    from app.config import Settings

    assert Settings(_env_file=None).lossless_level == DEFAULT_LOSSLESS_LEVEL


# The draft degradation: the upload reduced in the decoder, then one resize to the LR size.


def jpeg_file(path: Path, width: int, height: int, seed: int = 5) -> Path:
    Image.fromarray(scene(height, width, seed)).save(path, format="JPEG", quality=90)
    return path


def test_draft_is_its_own_degradation_served_by_its_own_models() -> None:
    from models.degradation import same_pixels

    fast, plain = Profile(draft=True), Profile()
    assert fast.degradation_id == "draft-bicubic-aa-x2/webp-lossless/v1"
    assert not same_pixels(fast.degradation_id, plain.degradation_id)
    # PNG and WebP lossless still hold the same pixels after the same (draft) downsampler.
    assert same_pixels(fast.degradation_id, Profile(codec="png", draft=True).degradation_id)
    with pytest.raises(ValueError, match="made from the upload"):
        fast.degrade(Image.fromarray(scene(400, 400)))


@pytest.mark.parametrize(
    ("size", "factor"),
    [((1280, 720), 2), ((1920, 1080), 2), ((400, 400), 2), ((3201, 1801), 2), ((399, 800), 1)],
)
def test_the_decoder_halves_the_upload_when_half_holds_the_lr_frame(
    size: tuple[int, int], factor: int, tmp_path: Path
) -> None:
    profile = Profile(draft=True)
    assert profile.reduction(size) == factor
    path = jpeg_file(tmp_path / "f.jpg", *size)
    with Image.open(path) as image:
        assert profile.start_draft(image) == factor
        image.load()
        assert image.size == (-(-size[0] // factor), -(-size[1] // factor))  # rounded up


def test_draft_lr_reduces_what_the_decoder_did_not(tmp_path: Path) -> None:
    profile = Profile(draft=True)
    pixels = scene(720, 1280, seed=2)
    expected = Image.fromarray(pixels).reduce(2).resize((200, 200), Image.Resampling.BICUBIC)
    png = profile.draft_lr(Image.fromarray(pixels), (1280, 720), 1)  # a PNG upload: box reduce
    np.testing.assert_array_equal(np.asarray(png), np.asarray(expected))
    with pytest.raises(ValueError, match="draft reduction is 2"):
        profile.draft_lr(Image.fromarray(pixels), (1280, 720), 4)
    # A JPEG reduced by its decoder gives nearly the pixels of the box reduction of its decode.
    path = jpeg_file(tmp_path / "f.jpg", 1280, 720)
    with Image.open(path) as image:
        boxed = profile.draft_lr(image.convert("RGB"), image.size, 1)
    with Image.open(path) as image:
        reduced_by = profile.start_draft(image)
        drafted = profile.draft_lr(image.convert("RGB"), (1280, 720), reduced_by)
    from models.metrics import psnr

    assert drafted.size == boxed.size == (200, 200)
    assert 35 < psnr(np.asarray(drafted), np.asarray(boxed)) < 100


@pytest.mark.parametrize("codec", ["webp-lossless", "webp-q90"])
def test_training_sees_exactly_the_pixels_a_draft_ingest_stores(codec: str, tmp_path: Path) -> None:
    profile = Profile(codec=codec, draft=True)
    path = jpeg_file(tmp_path / "frame.jpg", 1280, 720)
    with Image.open(path) as image:
        reduced_by = profile.start_draft(image)
        stored = profile.store_lr(profile.draft_lr(image.convert("RGB"), (1280, 720), reduced_by))
    pair = make_pair(path, profile)
    np.testing.assert_array_equal(decode_image(stored.data), pair.lr)
    # The model restores to the same canonical frame as without draft: the full decode, resized.
    np.testing.assert_array_equal(pair.hr, make_pair(path, Profile(codec=codec)).hr)
