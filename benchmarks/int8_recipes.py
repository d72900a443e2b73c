"""int8 recipes side by side: what each calibration choice costs a model's PSNR-Y, one pass.

    python benchmarks/int8_recipes.py --data ../shared/data/cctv [--model default]
        [--recipes shipped per-camera crop-192 ...] [--sets val-night val]

Each recipe is the one `models/engines.quantize` ships (static QDQ, uint8 activations, int8
per-channel weights, percentile 99.999 calibration on 96-pixel centre crops of 16 frames spread
over DATA/train, head and tail convolutions in fp32) with one thing changed. Each is built from
the model's fp32 ONNX export with onnxruntime's `quantize_static`, run by OpenVINO on the CPU, and
scored one pass per frame on each set under DATA through `models.evaluate` (PSNR-Y against the HR
frames, the archive's own degradation). "shipped" scores the model's shipped int8 file; "fp32"
the exact torch network, for reference. Prints a Markdown table. About 3-4 minutes a recipe for
the 16x64 `default` on 2 cores (124 frames scored).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import engines
from models.checkpoint import load_model
from models.data import find_images, make_pair
from models.degradation import Profile
from models.evaluate import evaluate
from models.restorer import Restorer, resolve_model_path


@dataclass(frozen=True)
class Recipe:
    """One change to the shipped recipe: the calibration frames, or keywords of
    `engines.quantize` (whose defaults are the shipped recipe's)."""

    what: str
    per_camera: int = 0  # > 0: this many frames of each camera instead of 16 spread over all
    crop: int = engines.CALIBRATION_CROP
    quantize: dict[str, Any] = field(default_factory=dict)


RECIPES: dict[str, Recipe] = {
    "per-camera": Recipe("2 frames of each training camera instead of 16 spread", per_camera=2),
    "crop-192": Recipe("192-pixel crops instead of 96", crop=192),
    "pct-99.99": Recipe("percentile 99.99", quantize={"percentile": 99.99}),
    "pct-99.9995": Recipe("percentile 99.9995", quantize={"percentile": 99.9995}),
    "minmax": Recipe("min-max calibration", quantize={"method": "MinMax"}),
    "fp32-more": Recipe(
        "also the first body convolution and the upsampler's in fp32",
        quantize={"fp32_convs": (0, 1, -2, -1)},
    ),
    "conv-only": Recipe(
        "only convolutions quantised (additions in fp32)", quantize={"op_types": ("Conv",)}
    ),
}


def calibration_frames(train: Path, profile: Profile, recipe: Recipe) -> list[np.ndarray]:
    """LR frames of `train` as the archive stores them: spread over it, or per camera."""
    if not recipe.per_camera:
        return engines.calibration_frames(train, profile, engines.CALIBRATION_FRAMES)
    by_camera: dict[str, list[Path]] = {}
    for path in find_images(train):
        by_camera.setdefault(path.relative_to(train).parts[0], []).append(path)
    frames = []
    for _, paths in sorted(by_camera.items()):
        step = max(1, len(paths) // recipe.per_camera)
        frames += [make_pair(p, profile).lr for p in paths[::step][: recipe.per_camera]]
    return frames


def build(fp32: Path, out: Path, frames: list[np.ndarray], recipe: Recipe) -> Path:
    """The recipe's int8 file, quantised from the fp32 export by `models/engines.quantize`."""
    engines.quantize(
        fp32, out, [engines.crop(frame, recipe.crop) for frame in frames], **recipe.quantize
    )
    return out


def scores(restorer: Restorer, sets: list[Path], profile: Profile) -> list[float]:
    return [evaluate(restorer, folder, profile)[1]["psnr_y"] for folder in sets]


def run(args: argparse.Namespace, emit: Callable[[str], None] = print) -> list[list[str]]:
    """The table's rows (name, what, PSNR-Y per set, seconds), each emitted as it is done."""
    torch.set_num_threads(args.threads)
    path = resolve_model_path(args.model)
    network, info = load_model(path)
    profile = Profile.parse(args.profile)
    data = Path(args.data)
    sets = [data / name for name in args.sets]
    emit(f"| recipe | change | {' | '.join(f'{s}: PSNR-Y (dB)' for s in args.sets)} | seconds |")
    emit("|---|---|" + "---|" * len(sets) + "---|")
    rows = []

    def row(name: str, what: str, restorer: Restorer, started: float) -> None:
        cells = [f"{db:.3f}" for db in scores(restorer, sets, profile)]
        rows.append([name, what, *cells, f"{time.monotonic() - started:.0f}"])
        emit(f"| {' | '.join(rows[-1])} |")

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        engines.export_onnx(network, fp32)
        for name in args.recipes:
            started = time.monotonic()
            if name == "fp32":
                row(name, "torch fp32, no int8", Restorer(network, info), started)
                continue
            if name == "shipped":
                model, what = engines.shipped_path(path), "none (the shipped file)"
            else:
                recipe = RECIPES[name]
                frames = calibration_frames(data / "train", profile, recipe)
                model, what = build(fp32, Path(tmp) / f"{name}.onnx", frames, recipe), recipe.what
            run_int8 = engines.open_engine("openvino-int8", model, args.threads)
            restorer = Restorer(network, info, engine="openvino-int8", run=run_int8)
            row(name, what, restorer, started)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="CCTV folder with train/ and the sets")
    parser.add_argument("--model", default="default")
    parser.add_argument("--profile", default="400:2:webp-lossless")
    parser.add_argument("--sets", nargs="+", default=["val-night", "val"])
    parser.add_argument(
        "--recipes",
        nargs="+",
        default=["fp32", "shipped", *RECIPES],
        choices=["fp32", "shipped", *RECIPES],
    )
    parser.add_argument("--threads", type=int, default=2)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
