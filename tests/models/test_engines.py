import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import engines
from models.checkpoint import save_model
from models.edsr import EDSR, EDSRConfig
from models.metrics import psnr
from models.restorer import Restorer
from tests.models.conftest import scene

pytest.importorskip("onnxruntime", reason="the int8 engines need the int8 extra")
pytest.importorskip("openvino", reason="the int8 engines need the int8 extra")


@pytest.fixture(scope="module")
def calibration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Camera-like HR frames, enough for calibration plus the held-out check frames."""
    folder = tmp_path_factory.mktemp("calibration") / "cam-1"
    folder.mkdir()
    for i in range(engines.CALIBRATION_FRAMES + engines.CHECK_FRAMES):
        Image.fromarray(scene(400, 400, seed=i)).save(folder / f"{i:03d}.png")
    return folder.parent


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "small.safetensors"
    save_model(path, EDSR(EDSRConfig(n_resblocks=2, n_feats=16)), name="small", degradation_id="x")
    return path


@pytest.mark.parametrize("engine", ["openvino-int8", "onnx-int8"])
def test_int8_engine_agrees_with_torch_within_the_stated_tolerance(
    engine: str, model_file: Path, calibration: Path, tmp_path: Path
) -> None:
    plain = Restorer.from_pretrained(str(model_file))
    fast = Restorer.from_pretrained(
        str(model_file), engine=engine, calibration=calibration, cache=tmp_path
    )
    assert (plain.engine, fast.engine) == ("torch", engine)
    frames = [scene(60, 80, seed=100), scene(48, 48, seed=101)]
    for a, b in zip(plain.restore(frames), fast.restore(frames), strict=True):
        assert a.shape == b.shape and b.dtype == np.uint8
        assert psnr(a, b) >= engines.AGREEMENT_DB


def test_auto_picks_an_int8_engine_on_the_cpu(
    model_file: Path, calibration: Path, tmp_path: Path
) -> None:
    restorer = Restorer.from_pretrained(
        str(model_file), engine="auto", calibration=calibration, cache=tmp_path
    )
    assert restorer.engine == "openvino-int8"


def test_the_quantised_model_is_cached_per_weights_hash(
    model_file: Path, calibration: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Restorer.from_pretrained(
        str(model_file), engine="onnx-int8", calibration=calibration, cache=tmp_path
    )
    cached = tmp_path / first.weights_sha256 / f"{engines.RECIPE}.onnx"
    assert cached.is_file()

    def refuse(*args: object) -> None:
        raise AssertionError("quantised again although cached")

    monkeypatch.setattr(engines, "quantize", refuse)
    # No calibration folder either: the cached model and its check frames are enough.
    again = Restorer.from_pretrained(
        str(model_file), engine="onnx-int8", calibration=tmp_path / "none", cache=tmp_path
    )
    assert again.engine == "onnx-int8"
    frame = [scene(40, 40, seed=7)]
    assert np.array_equal(first.restore(frame)[0], again.restore(frame)[0])


def test_a_missing_package_falls_back_to_torch_and_says_what_to_install(
    model_file: Path,
    calibration: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = engines.find_spec

    def without_openvino(name: str) -> object:
        return None if name == "openvino" else real(name)

    monkeypatch.setattr(engines, "find_spec", without_openvino)
    with caplog.at_level(logging.WARNING, logger="models.restorer"):
        restorer = Restorer.from_pretrained(
            str(model_file), engine="openvino-int8", calibration=calibration, cache=tmp_path
        )
    assert restorer.engine == "torch"
    assert "openvino not installed: pip install -e '.[int8]'" in caplog.text
    torch_only = Restorer.from_pretrained(str(model_file))
    frame = [scene(30, 30)]
    assert np.array_equal(restorer.restore(frame)[0], torch_only.restore(frame)[0])


def test_an_engine_that_disagrees_is_not_used(
    model_file: Path, calibration: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "AGREEMENT_DB", float("inf"))
    restorer = Restorer.from_pretrained(
        str(model_file), engine="auto", calibration=calibration, cache=tmp_path
    )
    assert restorer.engine == "torch"


def test_without_calibration_frames_torch_is_used(model_file: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    restorer = Restorer.from_pretrained(
        str(model_file), engine="auto", calibration=empty, cache=tmp_path / "cache"
    )
    assert restorer.engine == "torch"


def test_tiles_through_an_int8_engine_give_the_whole_frame_s_pixels_within_tolerance(
    model_file: Path, calibration: Path, tmp_path: Path
) -> None:
    whole = Restorer.from_pretrained(str(model_file)).restore([scene(90, 130)])[0]
    tiled = Restorer.from_pretrained(
        str(model_file), engine="openvino-int8", calibration=calibration, cache=tmp_path, tile=32
    ).restore([scene(90, 130)])[0]
    assert tiled.shape == whole.shape
    assert psnr(tiled, whole) >= engines.AGREEMENT_DB


def test_an_engine_that_fails_to_open_falls_back_to_torch(
    model_file: Path,
    calibration: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("compile failed")

    monkeypatch.setattr(engines, "open_engine", broken)
    with caplog.at_level(logging.WARNING, logger="models.restorer"):
        restorer = Restorer.from_pretrained(
            str(model_file), engine="auto", calibration=calibration, cache=tmp_path
        )
    assert restorer.engine == "torch"
    assert "compile failed" in caplog.text


def test_switching_back_to_torch_restores_exactly_as_torch(
    model_file: Path, calibration: Path, tmp_path: Path
) -> None:
    restorer = Restorer.from_pretrained(
        str(model_file), engine="onnx-int8", calibration=calibration, cache=tmp_path
    )
    assert restorer.use_engine("torch") == "torch"
    frame = [scene(30, 30)]
    plain = Restorer.from_pretrained(str(model_file)).restore(frame)[0]
    assert np.array_equal(restorer.restore(frame)[0], plain)
