"""Faster CPU engines for a restorer's network: the same weights exported to ONNX, quantised to
int8 (static, per-channel, calibrated on CCTV frames) and run by OpenVINO or ONNX Runtime.

Optional: the packages come with the `int8` extra (`pip install -e '.[int8]'`) and are imported
here only, lazily, so models/ still needs only torch, numpy and Pillow. The quantised model is
built once per weights SHA-256 and recipe and cached on disk (`cache_root()`); a few held-out
frames are cached beside it so the agreement check can run without the calibration folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch

from models.data import find_images, make_pair
from models.degradation import Profile
from models.edsr import EDSR
from models.metrics import psnr

ENGINES = ("torch", "openvino-int8", "onnx-int8")
# Part of the cache key: a changed recipe builds a new file instead of reusing an old one.
# Head and tail convolutions stay fp32 (3 channels in or out: int8 costs the most PSNR there
# and saves the least time); percentile calibration clips the rare extreme activations that
# would otherwise stretch the int8 range. Measured: -0.02 dB PSNR-Y on val (benchmarks/RESULTS.md).
RECIPE = "qdq-u8s8-perchannel-pct99.999-fp32headtail-crop96-v1"
# The agreement check: PSNR of the int8 output against the fp32 output on held-out frames.
AGREEMENT_DB = 38.0
CALIBRATION_FRAMES = 16
# ONNX Runtime's histogram calibration holds every activation of every frame at once (~0.5 GB per
# 200x200 frame for the 16x48 model): calibrate on centre crops so it stays near 1.5 GB.
CALIBRATION_CROP = 96
CHECK_FRAMES = 2
# Calibration frames by default: the project's CCTV training frames, beside the repository.
DEFAULT_CALIBRATION = Path(__file__).resolve().parents[2] / "shared" / "data" / "cctv" / "train"

Engine = Callable[[np.ndarray], np.ndarray]  # (N, 3, H, W) float32 -> (N, 3, sH, sW) float32


class EngineUnavailable(RuntimeError):
    """The engine's packages or calibration frames are missing, or it disagrees with torch."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cctv-archive" / "engines"


def calibration_frames(folder: Path, scale: int, count: int) -> list[np.ndarray]:
    """`count` LR frames spread over `folder`, degraded as the archive stores them (400 px HR)."""
    paths = find_images(folder)
    if not paths:
        raise EngineUnavailable(f"no calibration images in {folder}")
    step = max(1, len(paths) // count)
    profile = Profile.parse(f"400:{scale}:webp-lossless")
    return [make_pair(path, profile).lr for path in paths[::step][:count]]


def export_onnx(network: EDSR, path: Path) -> None:
    """fp32 ONNX with a dynamic batch and frame size (the TorchScript exporter: no onnxscript)."""
    example = torch.zeros(1, 3, 32, 32)
    network = network.float().cpu().eval()
    torch.onnx.export(
        network,
        (example,),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["lr"],
        output_names=["sr"],
        dynamic_axes={"lr": {0: "n", 2: "h", 3: "w"}, "sr": {0: "n", 2: "sh", 3: "sw"}},
    )


def quantize(fp32: Path, out: Path, frames: list[np.ndarray]) -> None:
    """Static int8 (QDQ: uint8 activations, int8 per-channel weights) calibrated on `frames`."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # Shape inference and graph clean-up first (drops the x1.0 residual scaling, which some
    # runtimes cannot take quantised).
    prepared = out.with_name("prepared.onnx")
    quant_pre_process(str(fp32), str(prepared))
    convs = [node.name for node in onnx.load(str(prepared)).graph.node if node.op_type == "Conv"]

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(frames)

        def get_next(self) -> dict[str, np.ndarray] | None:
            frame = next(self.batches, None)
            return None if frame is None else {"lr": to_nchw(frame[None])}

    quantize_static(
        str(prepared),
        str(out),
        Frames(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.Percentile,
        nodes_to_exclude=[convs[0], convs[-1]],
    )


def to_nchw(frames: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(frames.transpose(0, 3, 1, 2), dtype=np.float32)


def quantized_model(
    network: EDSR, weights_sha256: str, calibration: Path | None, cache: Path | None = None
) -> Path:
    """The cached int8 ONNX file for these weights, built (and its check frames saved) if absent."""
    folder = (cache or cache_root()) / weights_sha256
    path = folder / f"{RECIPE}.onnx"
    if path.exists():
        return path
    _require("onnx", "onnxruntime")
    source = calibration or DEFAULT_CALIBRATION
    frames = calibration_frames(source, network.config.scale, CALIBRATION_FRAMES + CHECK_FRAMES)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_onnx(network, fp32)
        quantize(fp32, Path(tmp) / "int8.onnx", [crop(f) for f in frames[:-CHECK_FRAMES]])
        np.savez(Path(tmp) / "check.npz", *frames[-CHECK_FRAMES:])
        os.replace(Path(tmp) / "check.npz", check_path(path))
        os.replace(Path(tmp) / "int8.onnx", path)  # last: its presence means the set is whole
    return path


def crop(frame: np.ndarray, size: int = CALIBRATION_CROP) -> np.ndarray:
    top, left = max(0, (frame.shape[0] - size) // 2), max(0, (frame.shape[1] - size) // 2)
    return frame[top : top + size, left : left + size]


def check_path(model: Path) -> Path:
    return model.with_suffix(".check.npz")


def open_engine(name: str, model: Path, threads: int) -> Engine:
    """A callable running the ONNX file with `name`'s runtime on `threads` CPU threads."""
    if name == "openvino-int8":
        _require("openvino")
        import openvino

        compiled = openvino.Core().compile_model(
            str(model),
            "CPU",
            {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"},
        )
        request = compiled.create_infer_request()
        return lambda x: request.infer({0: x})[0]
    if name == "onnx-int8":
        _require("onnxruntime")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        return lambda x: session.run(None, {"lr": x})[0]
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


def agreement_db(engine: Engine, network: EDSR, model: Path) -> float:
    """Lowest PSNR (dB) of the engine's uint8 output against the fp32 network's on the frames
    held out from calibration."""
    with np.load(check_path(model)) as saved:
        frames = [saved[key] for key in saved.files]
    scores = []
    with torch.inference_mode():
        for frame in frames:
            x = to_nchw(frame[None])
            reference = network.float().cpu()(torch.from_numpy(x)).numpy()
            scores.append(psnr(to_uint8(engine(x)), to_uint8(reference)))
    return min(scores)


def to_uint8(y: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def _require(*modules: str) -> None:
    missing = [m for m in modules if find_spec(m) is None]
    if missing:
        raise EngineUnavailable(
            f"{', '.join(missing)} not installed: pip install -e '.[int8]' for the int8 engines"
        )
