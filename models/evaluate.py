"""`cctv-archive evaluate`: a model against bicubic on a folder of HR images.

Each HR image goes through the profile's degradation (the archive's own path, or with
`--profile benchmark` the published tables' path: native size, modcropped, PNG); the model and
bicubic both upscale the same LR; PSNR-Y (BT.601, `scale` pixels shaved), RGB PSNR and SSIM-Y are
measured against the HR image.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.data import find_images, make_pair
from models.degradation import Profile, bicubic_upscale
from models.metrics import psnr_rgb, psnr_y, ssim_y
from models.restorer import ENSEMBLES, SERVED_ENSEMBLE, Restorer


@dataclass(frozen=True)
class ImageScore:
    image: str
    psnr_y: float
    psnr_y_bicubic: float
    psnr_rgb: float
    psnr_rgb_bicubic: float
    ssim: float
    ssim_bicubic: float


def score(
    sr: np.ndarray, bicubic: np.ndarray, hr: np.ndarray, name: str, border: int
) -> ImageScore:
    return ImageScore(
        image=name,
        psnr_y=psnr_y(sr, hr, border),
        psnr_y_bicubic=psnr_y(bicubic, hr, border),
        psnr_rgb=psnr_rgb(sr, hr, border),
        psnr_rgb_bicubic=psnr_rgb(bicubic, hr, border),
        ssim=ssim_y(sr, hr, border),
        ssim_bicubic=ssim_y(bicubic, hr, border),
    )


def evaluate(
    restorer: Restorer | None, data: str | Path, profile: Profile, *, progress: bool = False
) -> tuple[list[ImageScore], dict[str, float]]:
    """Per-image scores and their means. Without a restorer, only bicubic is measured
    (the model columns then repeat bicubic)."""
    root = Path(data)
    scores = []
    for path in tqdm(find_images(root), desc="evaluate", disable=not progress, leave=False):
        pair = make_pair(path, profile, root)
        bicubic = bicubic_upscale(pair.lr, profile.scale)
        sr = restorer.restore([pair.lr])[0] if restorer else bicubic
        scores.append(score(sr, bicubic, pair.hr, pair.name, profile.scale))
    keys = [k for k in asdict(scores[0]) if k != "image"]
    totals = {k: float(np.mean([getattr(s, k) for s in scores])) for k in keys}
    return scores, totals


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default="default", help="shipped model name or .safetensors path"
    )
    parser.add_argument("--data", required=True, help="folder of HR images (searched recursively)")
    parser.add_argument("--scale", type=int, default=None, help="must match the model's scale")
    parser.add_argument(
        "--profile",
        default="400:2:webp-lossless",
        help="HR_SIZE:SCALE:CODEC[:draft] as the archive stores, a named profile, or 'benchmark'",
    )
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--engine",
        default="torch",
        help="torch (exact fp32, the default), auto (what the service serves on a CPU), "
        "openvino-int8 or onnx-int8",
    )
    parser.add_argument(
        "--ensemble",
        type=int,
        choices=ENSEMBLES,
        default=SERVED_ENSEMBLE,
        help=f"passes per frame (default {SERVED_ENSEMBLE}: what the service serves, "
        "CCTV_RESTORE_ENSEMBLE); 2, 4 or 8 add the self-ensemble's mirrored views",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    try:
        restorer = Restorer.from_pretrained(
            args.model, device=args.device, engine=args.engine, ensemble=args.ensemble
        )
    except ValueError as exc:
        raise SystemExit(f"--engine: {exc}") from exc
    if args.engine not in ("torch", "auto") and restorer.backend != args.engine:
        raise SystemExit(f"--engine {args.engine} cannot run here (see the log); nothing measured")
    profile = Profile.parse(args.profile)
    scale = args.scale or restorer.scale
    if profile.scale != scale:
        profile = dataclasses.replace(profile, scale=scale)
    if scale != restorer.scale:
        raise SystemExit(f"--scale {scale} does not match the model's scale {restorer.scale}")
    if profile.degradation_id != restorer.degradation_id:
        print(
            f"note: model trained on {restorer.degradation_id}, evaluated on "
            f"{profile.degradation_id}",
            file=sys.stderr,
        )
    started = time.monotonic()
    scores, totals = evaluate(restorer, args.data, profile, progress=not args.json)
    seconds = time.monotonic() - started
    if args.json:
        print(
            json.dumps(
                {
                    "model": restorer.name,
                    "weights_sha256": restorer.weights_sha256,
                    "engine": restorer.engine,
                    "backend": restorer.backend,
                    "ensemble": restorer.ensemble,
                    "data": str(args.data),
                    "profile": str(profile),
                    "degradation_id": profile.degradation_id,
                    "scale": scale,
                    "images": len(scores),
                    **totals,
                    "seconds": round(seconds, 2),
                    "per_image": [asdict(s) for s in scores],
                }
            )
        )
        return 0
    print(
        f"model {restorer.name} ({restorer.engine}) on {args.data}, profile {profile} "
        f"({profile.degradation_id})"
    )
    columns = ("PSNR-Y", "bicubic", "RGB", "bicubic", "SSIM", "bicubic")
    print(f"{'image':<32} " + " ".join(f"{c:>7}" for c in columns))
    for s in [*scores, None]:
        row = s or ImageScore("mean", **totals)
        print(
            f"{row.image[:32]:<32} {row.psnr_y:7.2f} {row.psnr_y_bicubic:7.2f} "
            f"{row.psnr_rgb:7.2f} {row.psnr_rgb_bicubic:7.2f} {row.ssim:7.4f} "
            f"{row.ssim_bicubic:7.4f}"
        )
    gain = totals["psnr_y"] - totals["psnr_y_bicubic"]
    print(f"{len(scores)} images, PSNR-Y gain over bicubic {gain:+.2f} dB, {seconds:.1f} s")
    return 0
