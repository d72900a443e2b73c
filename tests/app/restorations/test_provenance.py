"""The labels themselves: what a restored image says about where its pixels came from."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.restorations.provenance import (
    EXIF_IMAGE_DESCRIPTION,
    Method,
    OutputFormat,
    Provenance,
    encode_restored,
)


def provenance(method: Method = Method.edsr, model: str = "edsr-x2") -> Provenance:
    return Provenance(
        frame_id="f" * 32,
        source_sha256="a" * 64,
        stored_sha256="b" * 64,
        source_degradation_id="bicubic-aa-x2/webp-lossless/v1",
        method=method,
        model_name=model if method is Method.edsr else "bicubic",
        weights_sha256="c" * 64 if method is Method.edsr else "",
        model_degradation_id="bicubic-aa-x2/webp-lossless/v1" if method is Method.edsr else "",
    )


def test_edsr_is_declared_generated_and_bicubic_interpolated() -> None:
    edsr, bicubic = provenance().headers(), provenance(Method.bicubic).headers()
    assert edsr["X-AI-Generated"] == "true" and "neural network" in edsr["X-Derivative-Notice"]
    assert bicubic["X-AI-Generated"] == "false" and "bicubic" in bicubic["X-Derivative-Notice"]
    assert bicubic["X-Restoration-Weights-SHA256"] == "none"
    for headers in (edsr, bicubic):
        assert "not an original recording" in headers["X-Derivative-Notice"]


def test_labels_stay_ascii_whatever_the_model_is_called() -> None:
    headers = provenance(model="édsr-caméra").headers()
    assert all(value.isascii() for value in headers.values())
    data = encode_restored(np.zeros((8, 8, 3), np.uint8), OutputFormat.jpeg, provenance(model="é"))
    assert Image.open(io.BytesIO(data)).getexif()[EXIF_IMAGE_DESCRIPTION].isascii()


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_pixels_survive_encoding_in_lossless_formats(fmt: OutputFormat) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    image = Image.open(io.BytesIO(encode_restored(pixels, fmt, provenance())))
    assert image.size == (24, 16)
    if fmt is not OutputFormat.jpeg:
        assert np.array_equal(np.asarray(image.convert("RGB")), pixels)
