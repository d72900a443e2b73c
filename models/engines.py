"""Faster CPU engines for a restorer's network: the same weights exported to ONNX and run by
OpenVINO in bf16 where the CPU computes bf16 natively (AMX or AVX-512 BF16), or quantised to int8
(static, per-channel, calibrated on CCTV frames) and run by OpenVINO or ONNX Runtime. Where both
bf16 and int8 run, `auto` times them on one frame and serves the faster (`pick`): a native bf16
is not always the faster one (an AMD Zen 4 runs int8 1.8x as fast).

Optional: the packages come with the `int8` extra (`pip install -e '.[int8]'`) and are imported
here only, lazily, so models/ still needs only torch, numpy and Pillow. The exported (fp32) and
the quantised models are built once per weights SHA-256 (and recipe) and cached on disk
(`cache_root()`); a few held-out frames are cached beside the int8 one so its agreement check can
run without the calibration folder.

A shipped model may come with its int8 file (`models/weights/NAME.int8.onnx`, made by
`cctv-archive models --int8 NAME`): it is used when its recorded weights SHA-256 and recipe match,
so a machine without CCTV frames to calibrate on (a container) still gets the fast engine. Its
agreement check, like the bf16 engine's, runs on synthetic camera-like frames (no CCTV frames
are shipped).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from models.data import find_images, make_pair
from models.degradation import Profile
from models.edsr import EDSR
from models.metrics import psnr

log = logging.getLogger(__name__)

ENGINES = ("torch", "openvino-bf16", "openvino-int8", "onnx-int8")
# Run from the fp32 export, no calibration: OpenVINO computes in bf16 (fp32 accumulation) on
# AMX tiles; measured 64.7 ms for a 200x200 frame (int8: 156 ms) agreeing with fp32 to 53 dB.
FP32_ENGINES = ("openvino-bf16",)
# `auto` takes an int8 engine over bf16 only when it is at least this many times as fast: bf16
# matches fp32 to 0.001 dB, int8 costs 0.01-0.04 dB PSNR-Y. Measured for one 200x200 frame on
# 2 cores: bf16 65 ms against int8 156 on an Intel Xeon with AMX; 253-299 against 142-164 on an
# AMD EPYC Zen 4 (AVX-512 BF16 and VNNI), where bf16 is native and still the slower.
INT8_OVER_BF16 = 1.25
OPSET = 17  # of the ONNX export
# Part of the cache key: a changed recipe builds a new file instead of reusing an old one (v2:
# calibrated on frames of the model's own codec).
# Head and tail convolutions stay fp32 (3 channels in or out: int8 costs the most PSNR there
# and saves the least time); percentile calibration clips the rare extreme activations that
# would otherwise stretch the int8 range. Measured: -0.025 dB PSNR-Y on val (benchmarks/RESULTS.md).
RECIPE = "qdq-u8s8-perchannel-pct99.999-fp32headtail-crop96-owncodec-v2"
# The agreement check: PSNR of the int8 output against the fp32 output on held-out frames.
AGREEMENT_DB = 38.0
CALIBRATION_FRAMES = 16
# ONNX Runtime's histogram calibration holds every activation of every frame at once (~0.5 GB per
# 200x200 frame for the 16x48 model): calibrate on centre crops so it stays near 1.5 GB.
CALIBRATION_CROP = 96
CHECK_FRAMES = 2
# Calibration frames by default: the project's CCTV training frames, beside the repository.
DEFAULT_CALIBRATION = Path(__file__).resolve().parents[2] / "shared" / "data" / "cctv" / "train"
SHIPPED_SUFFIX = ".int8.onnx"
# Recorded in an int8 file's ONNX metadata: what it was built from.
META_SHA256, META_RECIPE, META_CALIBRATION = (
    "cctv.weights_sha256",
    "cctv.recipe",
    "cctv.calibration",
)

Engine = Callable[[np.ndarray], np.ndarray]  # (N, 3, H, W) float32 -> (N, 3, sH, sW) float32


class EngineUnavailable(RuntimeError):
    """The engine's packages or calibration frames are missing, or it disagrees with torch."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cctv-archive" / "engines"


def calibration_profile(scale: int, degradation_id: str) -> Profile:
    """400 px HR frames degraded by the model's own codec (webp-q90 frames for the webp-q90
    model); WebP lossless when the id names no codec this version knows."""
    parts = degradation_id.split("/")
    draft = parts[0].startswith("draft-")
    try:
        return Profile(400, scale, parts[1] if len(parts) == 3 else "", draft=draft)
    except ValueError:
        return Profile(hr_size=400, scale=scale)


def calibration_frames(folder: Path, profile: Profile, count: int) -> list[np.ndarray]:
    """`count` LR frames spread over `folder`, degraded as the archive stores them."""
    try:
        paths = find_images(folder)
    except FileNotFoundError as exc:
        raise EngineUnavailable(f"no calibration images: {exc}") from exc
    step = max(1, len(paths) // count)
    return [make_pair(path, profile).lr for path in paths[::step][:count]]


def synthetic_frames(scale: int, count: int = CHECK_FRAMES) -> list[np.ndarray]:
    """Deterministic camera-like LR frames (gradients, edges, texture, noise) for the agreement
    check of a shipped int8 file: it checks that the engine runs these weights, not quality."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:400, 0:400].astype(np.float32)
    frames = []
    for i in range(count):
        base = np.stack(
            [
                x / 400 * 180 + 40 * (((x // 50 + y // 50 + i) % 2) > 0),
                (np.sin(x / (9 + i)) * np.cos(y / 13) + 1) * 100,
                y / 400 * 200,
            ],
            axis=-1,
        )
        hr = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
        frames.append(Profile(hr_size=400, scale=scale).degrade(Image.fromarray(hr)))
    return frames


def shipped_path(weights: Path) -> Path:
    """Where a model file's int8 companion lives: NAME.safetensors -> NAME.int8.onnx."""
    return weights.with_name(weights.name.removesuffix(".safetensors") + SHIPPED_SUFFIX)


def metadata(model: Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(model), load_external_data=False).metadata_props}


def usable_shipped(shipped: Path | None, weights_sha256: str) -> Path | None:
    """`shipped` if it exists and was built from these weights with this recipe, else None
    (with a logged reason when it exists but does not match)."""
    if shipped is None or not shipped.exists():
        return None
    _require("onnx")
    found = metadata(shipped)
    if found.get(META_SHA256) != weights_sha256 or found.get(META_RECIPE) != RECIPE:
        log.warning(
            "%s was built from weights %s with recipe %s, not %s with %s: ignored",
            shipped.name,
            found.get(META_SHA256, "?")[:16],
            found.get(META_RECIPE, "?"),
            weights_sha256[:16],
            RECIPE,
        )
        return None
    return shipped


def native_bf16() -> bool:
    """Whether OpenVINO computes bf16 natively on this CPU (AMX or AVX-512 BF16); elsewhere bf16
    is no faster than fp32 and the int8 engines are the fast ones."""
    if find_spec("openvino") is None:
        return False
    import openvino

    try:
        return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # no CPU plugin: no engine of OpenVINO's either
        return False


def fp32_model(network: EDSR, weights_sha256: str, cache: Path | None = None) -> Path:
    """The fp32 ONNX file of these weights, exported once and cached beside the int8 ones (named
    by the export's opset: a changed export makes a new file)."""
    folder = (cache or cache_root()) / weights_sha256
    path = folder / f"fp32-opset{OPSET}.onnx"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        export_onnx(network, Path(tmp) / "fp32.onnx")
        os.replace(Path(tmp) / "fp32.onnx", path)  # whole or absent, for concurrent starts
    return path


def export_onnx(network: EDSR, path: Path) -> None:
    """fp32 ONNX with a dynamic batch and frame size (the TorchScript exporter: no onnxscript)."""
    example = torch.zeros(1, 3, 32, 32)
    network = network.float().cpu().eval()
    torch.onnx.export(
        network,
        (example,),
        str(path),
        dynamo=False,
        opset_version=OPSET,
        input_names=["lr"],
        output_names=["sr"],
        dynamic_axes={"lr": {0: "n", 2: "h", 3: "w"}, "sr": {0: "n", 2: "sh", 3: "sw"}},
    )


def quantize(
    fp32: Path,
    out: Path,
    frames: list[np.ndarray],
    meta: dict[str, str] | None = None,
    *,
    method: str = "Percentile",
    percentile: float = 99.999,
    fp32_convs: tuple[int, ...] = (0, -1),
    op_types: tuple[str, ...] = (),
) -> None:
    """Static int8 (QDQ: uint8 activations, int8 per-channel weights) calibrated on `frames`;
    `meta` is recorded in the file's ONNX metadata. The keywords are RECIPE's choices (changed
    only by benchmarks/int8_recipes.py): the calibration method and its percentile, the
    convolutions (by index) left in fp32, and the op types quantised (empty: all it can)."""
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
        calibrate_method=getattr(CalibrationMethod, method),
        nodes_to_exclude=sorted({convs[i] for i in fp32_convs}),
        extra_options={"CalibPercentile": percentile},
        **({"op_types_to_quantize": list(op_types)} if op_types else {}),
    )
    if meta:
        model = onnx.load(str(out))
        onnx.helper.set_model_props(model, meta)
        onnx.save(model, str(out))


def to_nchw(frames: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(frames.transpose(0, 3, 1, 2), dtype=np.float32)


def quantized_model(
    network: EDSR,
    weights_sha256: str,
    calibration: Path | None,
    cache: Path | None = None,
    *,
    shipped: Path | None = None,
    degradation_id: str = "",
) -> Path:
    """The int8 ONNX file for these weights: `shipped` when it matches them, else the cached
    one, built (and its check frames saved) if absent, calibrated on frames of the model's own
    degradation."""
    found = usable_shipped(shipped, weights_sha256)
    if found is not None:
        return found
    folder = (cache or cache_root()) / weights_sha256
    path = folder / f"{RECIPE}.onnx"
    if path.exists():
        return path
    _require("onnx", "onnxruntime")
    source = calibration or DEFAULT_CALIBRATION
    profile = calibration_profile(network.config.scale, degradation_id)
    frames = calibration_frames(source, profile, CALIBRATION_FRAMES + CHECK_FRAMES)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        META_SHA256: weights_sha256,
        META_RECIPE: RECIPE,
        META_CALIBRATION: f"{len(frames) - CHECK_FRAMES} frames of {source.name}/, "
        f"profile {profile}",
    }
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_onnx(network, fp32)
        quantize(fp32, Path(tmp) / "int8.onnx", [crop(f) for f in frames[:-CHECK_FRAMES]], meta)
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
    if name in ("openvino-int8", "openvino-bf16"):
        _require("openvino")
        import openvino

        config: dict[str, object] = {
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            "ENABLE_CPU_PINNING": False,
        }
        if name == "openvino-bf16":
            config["INFERENCE_PRECISION_HINT"] = "bf16"
        compiled = openvino.Core().compile_model(str(model), "CPU", config)
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
    held out from calibration (synthetic frames for a shipped file, which has none beside it)."""
    if check_path(model).exists():
        with np.load(check_path(model)) as saved:
            frames = [saved[key] for key in saved.files]
    else:
        frames = synthetic_frames(network.config.scale)
    scores = []
    with torch.inference_mode():
        for frame in frames:
            x = to_nchw(frame[None])
            reference = network.float().cpu()(torch.from_numpy(x)).numpy()
            scores.append(psnr(to_uint8(engine(x)), to_uint8(reference)))
    return min(scores)


def frame_ms(runs: dict[str, Engine], frame: np.ndarray, rounds: int = 3) -> dict[str, float]:
    """Each engine's best time (ms) for one pass over `frame`, the engines taking turns so a
    machine slowing down mid-way slows them all."""
    x = to_nchw(frame[None])
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run(x)
            best[name] = min(best[name], (time.perf_counter() - started) * 1e3)
    return best


def pick(timings: dict[str, float]) -> str:
    """The engine `auto` serves from the times of those that agree with torch: the fastest,
    except that bf16 stays unless an int8 engine is INT8_OVER_BF16 times as fast."""
    fastest = min(timings, key=timings.__getitem__)
    bf16 = timings.get("openvino-bf16")
    if bf16 is not None and bf16 < timings[fastest] * INT8_OVER_BF16:
        return "openvino-bf16"
    return fastest


def to_uint8(y: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def _require(*modules: str) -> None:
    missing = [m for m in modules if find_spec(m) is None]
    if missing:
        raise EngineUnavailable(
            f"{', '.join(missing)} not installed: pip install -e '.[int8]' for the int8 engines"
        )
