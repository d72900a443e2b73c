import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models import engines
from models.checkpoint import file_sha256, save_model
from models.edsr import EDSR, EDSRConfig
from models.metrics import psnr
from models.registry import build_int8, ship
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


@pytest.fixture
def int8_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    """`auto` as on a CPU without native bf16 (no AMX): the int8 engines come first."""
    monkeypatch.setattr(engines, "native_bf16", lambda: False)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "small.safetensors"
    torch.manual_seed(0)  # the same weights whichever tests ran before (int8 error depends on them)
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


@pytest.mark.usefixtures("int8_auto")
def test_auto_picks_an_int8_engine_on_a_cpu_without_native_bf16(
    model_file: Path, calibration: Path, tmp_path: Path
) -> None:
    restorer = Restorer.from_pretrained(
        str(model_file), engine="auto", calibration=calibration, cache=tmp_path
    )
    assert restorer.engine == "openvino-int8"


def test_an_engine_runs_every_view_of_the_self_ensemble(
    model_file: Path, calibration: Path, tmp_path: Path
) -> None:
    plain = Restorer.from_pretrained(str(model_file), ensemble=8)
    fast = Restorer.from_pretrained(
        str(model_file),
        engine="openvino-int8",
        calibration=calibration,
        cache=tmp_path,
        ensemble=8,
    )
    assert fast.engine == "openvino-int8+ensemble-x8"
    single = Restorer.from_pretrained(
        str(model_file), engine="openvino-int8", calibration=calibration, cache=tmp_path
    )
    frame = scene(60, 80, seed=102)  # not square: the transposed views change shape
    ensembled, alone = fast.restore([frame])[0], single.restore([frame])[0]
    assert psnr(plain.restore([frame])[0], ensembled) >= engines.AGREEMENT_DB
    assert psnr(ensembled, alone) < psnr(plain.restore([frame])[0], ensembled)


def test_bf16_engine_agrees_with_torch_without_calibration_frames(
    model_file: Path, tmp_path: Path
) -> None:
    plain = Restorer.from_pretrained(str(model_file))
    fast = Restorer.from_pretrained(
        str(model_file), engine="openvino-bf16", calibration=tmp_path / "none", cache=tmp_path
    )
    assert fast.engine == "openvino-bf16"
    frames = [scene(60, 80, seed=100), scene(48, 48, seed=101)]
    for a, b in zip(plain.restore(frames), fast.restore(frames), strict=True):
        assert a.shape == b.shape and b.dtype == np.uint8
        assert psnr(a, b) >= engines.AGREEMENT_DB


def test_auto_serves_bf16_where_no_int8_engine_runs_and_exports_once(
    model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "native_bf16", lambda: True)
    first = Restorer.from_pretrained(
        str(model_file), engine="auto", calibration=tmp_path / "none", cache=tmp_path
    )
    assert first.engine == "openvino-bf16"
    assert (tmp_path / first.weights_sha256 / f"fp32-opset{engines.OPSET}.onnx").is_file()

    def refuse(*args: object) -> None:
        raise AssertionError("exported again although cached")

    monkeypatch.setattr(engines, "export_onnx", refuse)
    again = Restorer.from_pretrained(str(model_file), engine="auto", cache=tmp_path)
    assert again.engine == "openvino-bf16"
    frame = [scene(40, 40, seed=7)]
    assert np.array_equal(first.restore(frame)[0], again.restore(frame)[0])


@pytest.mark.parametrize(
    ("timings", "chosen"),
    [
        ({"openvino-bf16": 299.0, "openvino-int8": 164.0}, "openvino-int8"),  # a Zen 4
        ({"openvino-bf16": 65.0, "openvino-int8": 156.0}, "openvino-bf16"),  # AMX
        ({"openvino-bf16": 120.0, "openvino-int8": 100.0}, "openvino-bf16"),  # int8 not 1.25x
        ({"openvino-bf16": 125.0, "onnx-int8": 100.0}, "onnx-int8"),
        ({"openvino-int8": 90.0, "onnx-int8": 80.0}, "onnx-int8"),
    ],
)
def test_pick_serves_the_fastest_keeping_bf16_unless_int8_is_clearly_faster(
    timings: dict[str, float], chosen: str
) -> None:
    assert engines.pick(timings) == chosen


def test_auto_times_bf16_and_int8_where_both_run_and_serves_the_pick(
    model_file: Path, calibration: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "native_bf16", lambda: True)
    restorer = Restorer.from_pretrained(
        str(model_file), engine="auto", calibration=calibration, cache=tmp_path
    )
    assert set(restorer.engine_ms) == {"openvino-bf16", "openvino-int8"}
    assert all(0 < ms < 60_000 for ms in restorer.engine_ms.values())
    assert restorer.engine == engines.pick(restorer.engine_ms)

    served = {}
    for int8_ms in (10.0, 1000.0):  # int8 clearly faster, then slower
        monkeypatch.setattr(
            engines,
            "frame_ms",
            lambda runs, frame, t=int8_ms: {"openvino-bf16": 100.0, "openvino-int8": t},
        )
        again = Restorer.from_pretrained(str(model_file), engine="auto", cache=tmp_path)
        served[int8_ms] = again.engine
        plain = Restorer.from_pretrained(str(model_file))
        frame = [scene(40, 40, seed=8)]
        assert psnr(again.restore(frame)[0], plain.restore(frame)[0]) >= engines.AGREEMENT_DB
    assert served == {10.0: "openvino-int8", 1000.0: "openvino-bf16"}


def test_a_named_engine_is_not_timed(
    model_file: Path, calibration: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "native_bf16", lambda: True)

    def refuse(*args: object) -> None:
        raise AssertionError("timed although the engine was named")

    monkeypatch.setattr(engines, "frame_ms", refuse)
    restorer = Restorer.from_pretrained(
        str(model_file), engine="openvino-int8", calibration=calibration, cache=tmp_path
    )
    assert (restorer.engine, restorer.engine_ms) == ("openvino-int8", {})


def test_openvino_is_asked_for_bf16_only_by_the_bf16_engine(
    model_file: Path, calibration: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openvino

    hints: list[object] = []
    real = openvino.Core.compile_model

    def recording(self: object, model: object, device: str, config: dict[str, object]) -> object:
        hints.append(config.get("INFERENCE_PRECISION_HINT"))
        return real(self, model, device, config)

    monkeypatch.setattr(openvino.Core, "compile_model", recording)
    for engine in ("openvino-bf16", "openvino-int8"):
        restorer = Restorer.from_pretrained(
            str(model_file), engine=engine, calibration=calibration, cache=tmp_path
        )
        assert restorer.engine == engine
    assert hints == ["bf16", None]


def test_native_bf16_is_false_without_openvino(monkeypatch: pytest.MonkeyPatch) -> None:
    real = engines.find_spec
    monkeypatch.setattr(engines, "find_spec", lambda n: None if n == "openvino" else real(n))
    assert engines.native_bf16() is False


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


@pytest.mark.usefixtures("int8_auto")
def test_without_calibration_frames_or_native_bf16_torch_is_used(
    model_file: Path, tmp_path: Path
) -> None:
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


def shipped_model(folder: Path, name: str = "small", seed: int = 0) -> Path:
    """A model file in a weights folder of its own, as `models/weights/` holds them."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    path = folder / f"{name}.safetensors"
    network = EDSR(EDSRConfig(n_resblocks=2, n_feats=16))
    save_model(path, network, name=name, degradation_id="bicubic-aa-x2/webp-lossless/v1")
    return path


@pytest.mark.usefixtures("int8_auto")
def test_a_shipped_int8_file_is_used_without_calibration_frames_or_a_cache(
    calibration: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = shipped_model(tmp_path / "weights")
    built = build_int8("small", calibration=calibration, weights_dir=weights.parent)
    assert built.path == weights.with_name("small.int8.onnx")
    assert built.agreement_db >= engines.AGREEMENT_DB
    assert engines.metadata(built.path)[engines.META_SHA256] == file_sha256(weights)

    def refuse(*args: object) -> None:
        raise AssertionError("quantised although a matching int8 file is shipped")

    monkeypatch.setattr(engines, "quantize", refuse)
    cache = tmp_path / "cache"
    restorer = Restorer.from_pretrained(
        str(weights), engine="auto", calibration=tmp_path / "no-frames", cache=cache
    )
    assert restorer.engine == "openvino-int8"
    assert not cache.exists()  # nothing built, nothing cached
    plain = Restorer.from_pretrained(str(weights))
    frames = [scene(60, 80, seed=3)]
    assert psnr(plain.restore(frames)[0], restorer.restore(frames)[0]) >= engines.AGREEMENT_DB


@pytest.mark.usefixtures("int8_auto")
def test_a_shipped_int8_file_of_other_weights_is_ignored(
    calibration: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    weights = shipped_model(tmp_path / "weights")
    build_int8("small", calibration=calibration, weights_dir=weights.parent)
    shipped_model(tmp_path / "weights", seed=1)  # retrained in place: the int8 file is stale
    with caplog.at_level(logging.WARNING, logger="models.engines"):
        restorer = Restorer.from_pretrained(
            str(weights), engine="auto", calibration=tmp_path / "no-frames", cache=tmp_path / "c"
        )
    assert restorer.engine == "torch"
    assert "small.int8.onnx was built from weights" in caplog.text


def test_shipping_new_weights_removes_their_old_int8_file(
    calibration: Path, tmp_path: Path
) -> None:
    weights = shipped_model(tmp_path / "weights")
    built = build_int8("small", calibration=calibration, weights_dir=weights.parent)
    retrained = shipped_model(tmp_path / "run", seed=2)
    ship(retrained, "small", profile="400:2:webp-lossless", weights_dir=weights.parent)
    assert not built.path.exists()


def test_an_int8_file_is_not_shipped_when_it_disagrees(
    calibration: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = shipped_model(tmp_path / "weights")
    monkeypatch.setattr(engines, "AGREEMENT_DB", float("inf"))
    with pytest.raises(ValueError, match="not shipped"):
        build_int8("small", calibration=calibration, weights_dir=weights.parent)
    assert not engines.shipped_path(weights).exists()


@pytest.mark.parametrize(
    ("degradation_id", "codec"),
    [
        ("bicubic-aa-x2/webp-q90/v1", "webp-q90"),
        ("bicubic-aa-x2/avif-q50/v1", "avif-q50"),
        ("bicubic-aa-x2/webp-lossless/v1", "webp-lossless"),
        ("x", "webp-lossless"),
    ],
)
def test_calibration_frames_are_degraded_by_the_models_own_codec(
    degradation_id: str, codec: str
) -> None:
    profile = engines.calibration_profile(2, degradation_id)
    assert (profile.hr_size, profile.scale, profile.codec) == (400, 2, codec)


def test_openvino_does_not_pin_its_threads_to_cores(
    calibration: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pinned, two worker processes of one thread each land on the same core and run at half
    speed (benchmarks/scaling.py measured 2 x 1 at 0.53x of 1 x 2; 1.0x unpinned)."""
    import openvino

    seen: list[dict[str, object]] = []
    real = openvino.Core.compile_model

    def recording(self: object, model: object, device: str, config: dict[str, object]) -> object:
        seen.append(dict(config))
        return real(self, model, device, config)

    monkeypatch.setattr(openvino.Core, "compile_model", recording)
    weights = shipped_model(tmp_path / "weights")
    restorer = Restorer.from_pretrained(
        str(weights), engine="openvino-int8", calibration=calibration, cache=tmp_path / "cache"
    )
    assert restorer.engine == "openvino-int8"
    assert seen and all(config["ENABLE_CPU_PINNING"] is False for config in seen)
