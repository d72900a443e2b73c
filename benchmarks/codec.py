"""Which codec should the archive store frames in? Bytes per stored frame against restored quality.

    python benchmarks/codec.py --data ../shared/data/cctv/val [--model default] [--limit N]

For each storage codec of the 200x200 frame: mean bytes per frame and PSNR-Y of bicubic and of
the model restoring it; beside them, the full 400x400 frame stored with WebP/JPEG at several
qualities (no restoration needed) for the same budget comparison. PSNR-Y is measured against the
canonical 400x400 HR frame with the published protocol (2 pixels shaved).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data import find_images
from models.degradation import Profile, bicubic_upscale, decode_image
from models.metrics import psnr_y
from models.restorer import Restorer

CODECS = ["png", "webp-lossless", "webp-q90", "webp-q75", "jpeg-q90", "jpeg-q75"]
FULL = [("webp", 90), ("webp", 75), ("webp", 50), ("jpeg", 90), ("jpeg", 75), ("jpeg", 50)]


def encode_full(hr: Image.Image, kind: str, quality: int) -> bytes:
    out = io.BytesIO()
    if kind == "webp":
        hr.save(out, format="WEBP", quality=quality, method=6)
    else:
        hr.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="default")
    parser.add_argument("--limit", type=int, default=0, help="first N images only")
    args = parser.parse_args()
    restorer = Restorer.from_pretrained(args.model)
    paths = find_images(args.data)[: args.limit or None]
    base = Profile()
    stats: dict[str, dict[str, list[float]]] = {}
    for path in tqdm(paths, desc="frames"):
        with Image.open(path) as image:
            hr_image = base.canonicalise(image)
        hr = np.asarray(hr_image)
        lr_image = base.downsample(hr_image)
        for codec in CODECS:
            profile = Profile(codec=codec)
            data = profile.encode(lr_image)
            lr = decode_image(data)
            row = stats.setdefault(codec, {"bytes": [], "bicubic": [], "model": []})
            row["bytes"].append(len(data))
            row["bicubic"].append(psnr_y(bicubic_upscale(lr, 2), hr, 2))
            row["model"].append(psnr_y(restorer.restore([lr])[0], hr, 2))
        raw = hr.nbytes
        for kind, quality in FULL:
            data = encode_full(hr_image, kind, quality)
            row = stats.setdefault(f"400x400 {kind} q{quality}", {"bytes": [], "direct": []})
            row["bytes"].append(len(data))
            row["direct"].append(psnr_y(decode_image(data), hr, 2))
    print(
        f"\n{len(paths)} frames of {args.data}; model {restorer.name} "
        f"(trained on {restorer.degradation_id}); raw 400x400 RGB = {raw} bytes"
    )
    print(f"{'stored as':<22} {'bytes/frame':>11} {'vs raw':>7} {'bicubic':>8} {'model':>8}")
    for name, row in stats.items():
        size = np.mean(row["bytes"])
        if "direct" in row:
            quality = f"{np.mean(row['direct']):8.2f} {'(direct)':>8}"
        else:
            quality = f"{np.mean(row['bicubic']):8.2f} {np.mean(row['model']):8.2f}"
        label = name if "400x400" in name else f"200x200 {name}"
        print(f"{label:<22} {size:11.0f} {size / raw:7.3f} {quality}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
