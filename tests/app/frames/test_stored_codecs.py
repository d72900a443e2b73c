"""Lossy stored codecs end to end: an archive on an AVIF (or lossy WebP) profile ingests, stores
exactly what the profile makes, and restores with a model trained on that codec only."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from app.frames.images import decode_upload
from models import decode_image
from models.data import make_pair
from models.degradation import Profile
from models.edsr import EDSRConfig
from models.metrics import psnr
from models.restorer import Restorer
from tests.app.images import decode, image_bytes, scene


def matched_restorer(profile: Profile) -> Restorer:
    return Restorer.from_config(
        EDSRConfig(n_resblocks=1, n_feats=8),
        name=f"tiny-{profile.codec}",
        degradation_id=profile.degradation_id,
    )


@pytest.mark.parametrize(("codec", "upload_format"), [("avif-q50", "AVIF"), ("webp-q75", "JPEG")])
def test_lossy_profile_stores_its_codec_and_restores_with_its_model(
    archive_factory, settings_with, codec: str, upload_format: str
) -> None:
    profile = Profile(codec=codec)
    restorer = matched_restorer(profile)
    archive = archive_factory(settings_with(profile=str(profile)), restorer=restorer)
    upload = image_bytes(upload_format, width=640, height=480)

    response = archive.upload(upload)
    assert response.status_code == 201, response.text
    frame = response.json()
    assert frame["stored"]["codec"] == codec
    assert frame["stored"]["media_type"] == profile.media_type

    stored = archive.get(f"/v1/frames/{frame['id']}/stored")
    assert stored.headers["content-type"] == profile.media_type
    # Byte for byte what the pinned degradation makes of the decoded upload.
    decoded = decode_upload(upload, allowed=(upload_format.lower(),), max_pixels=10**6)
    assert stored.content == profile.store(decoded.image).data

    restored = archive.get(f"/v1/frames/{frame['id']}/restored")
    assert restored.status_code == 200, restored.text
    pixels = np.asarray(decode(restored.content).convert("RGB"))
    assert pixels.shape == (400, 400, 3)
    lr = torch.tensor(decode_image(stored.content), dtype=torch.float32)
    with torch.no_grad():
        out = restorer.network(lr.permute(2, 0, 1)[None])[0]
    expected = out.clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.abs(pixels.astype(int) - expected.astype(int)).max() <= 1

    bicubic = archive.get(f"/v1/frames/{frame['id']}/restored", params={"method": "bicubic"})
    assert bicubic.status_code == 200
    assert decode(bicubic.content).size == (400, 400)


def test_avif_profile_refuses_a_model_trained_on_other_pixels(
    archive_factory, settings_with, tiny_restorer
) -> None:
    # tiny_restorer is trained (as far as its header says) on WebP-lossless frames.
    with pytest.raises(RuntimeError, match="trained on frames degraded as"):
        archive_factory(settings_with(profile="400:2:avif-q50"), restorer=tiny_restorer)


def test_a_named_profile_is_served_as_the_profile_it_names(archive_factory, settings_with) -> None:
    archive = archive_factory(settings_with(profile="evidence"))
    frame = archive.upload().json()
    assert frame["stored"]["codec"] == "webp-lossless"
    assert frame["stored"]["media_type"] == "image/webp"


def test_the_lossless_level_changes_stored_bytes_never_pixels(
    archive_factory, settings_with
) -> None:
    """CCTV_LOSSLESS_LEVEL reaches the stored frame: a faster level stores other (larger) bytes
    of the very same pixels, which the frame's recorded size and hash describe."""
    upload = image_bytes("JPEG", width=640, height=480)
    frames = {}
    for level in (0, 6):
        archive = archive_factory(
            settings_with(profile="400:2:webp-lossless", lossless_level=level)
        )
        frame = archive.upload(upload).json()
        stored = archive.get(f"/v1/frames/{frame['id']}/stored")
        assert (
            stored.content
            == Profile()
            .store(
                decode_upload(upload, allowed=("jpeg",), max_pixels=10**6).image,
                lossless_level=level,
            )
            .data
        )
        assert frame["stored"]["bytes"] == len(stored.content)
        frames[level] = stored.content
    assert frames[0] != frames[6]
    assert len(frames[0]) > len(frames[6])
    np.testing.assert_array_equal(decode_image(frames[0]), decode_image(frames[6]))


def test_draft_profile_stores_what_its_model_was_trained_on(
    archive_factory, settings_with, tmp_path
) -> None:
    profile = Profile.parse("fast")
    restorer = matched_restorer(profile)
    settings = settings_with(profile="fast", audit_sample_rate=1.0)
    archive = archive_factory(settings, restorer=restorer)
    upload = image_bytes("JPEG", width=1280, height=720)

    response = archive.upload(upload)
    assert response.status_code == 201, response.text
    frame = response.json()
    assert (frame["stored"]["width"], frame["stored"]["height"]) == (200, 200)
    assert frame["original"]["width"] == 1280  # the header's size, not the reduced decode's
    # The stored pixels are the training pipeline's LR of the same file, exactly.
    path = tmp_path / "upload.jpg"
    path.write_bytes(upload)
    pair = make_pair(path, profile)
    stored = archive.get(f"/v1/frames/{frame['id']}/stored")
    np.testing.assert_array_equal(decode_image(stored.content), pair.lr)
    # A sampled frame's reference is the canonical HR, from the full decode.
    reference = decode(archive.runtime.store.get(f"references/{frame['id'][:2]}/{frame['id']}.png"))
    np.testing.assert_array_equal(np.asarray(reference), pair.hr)

    restored = archive.get(f"/v1/frames/{frame['id']}/restored")
    assert restored.status_code == 200, restored.text
    assert decode(restored.content).size == (400, 400)


@pytest.mark.parametrize(("upload_format", "orientation"), [("PNG", None), ("JPEG", 6)])
def test_draft_profile_reduces_every_upload_upright(
    archive_factory, settings_with, upload_format: str, orientation: int | None
) -> None:
    image = Image.fromarray(scene(1280, 720))  # upright: 1280 wide, 720 high
    out = io.BytesIO()
    if orientation == 6:  # the camera wrote it turned, and says so in EXIF
        exif = image.getexif()
        exif[0x0112] = orientation
        image.transpose(Image.Transpose.ROTATE_90).save(
            out, format="JPEG", quality=95, exif=exif.tobytes()
        )
    else:
        image.save(out, format=upload_format)
    profile = Profile.parse("fast")
    archive = archive_factory(settings_with(profile="fast"), restorer=matched_restorer(profile))

    response = archive.upload(out.getvalue())
    assert response.status_code == 201, response.text
    stored = decode_image(archive.get(f"/v1/frames/{response.json()['id']}/stored").content)
    expected = np.asarray(profile.draft_lr(image, image.size, 1))  # the box reduction
    assert stored.shape == (200, 200, 3)
    if orientation is None:  # a PNG is box-reduced after decoding: exactly the scene's
        np.testing.assert_array_equal(stored, expected)
    else:  # the turned JPEG: reduced by the DCT, upright, close to the scene's (not turned)
        assert psnr(stored, expected) > 30
