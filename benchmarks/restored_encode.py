"""What saving a restored frame costs: the encoder settings, and a batch on 1 or more threads.

    python benchmarks/restored_encode.py [--data ../shared/data/cctv/val] [--frames 8]
        [--repeat 6] [--engine auto]

The frames are what the service serves: the default model's restorations (400x400) of
`--frames` images of `--data` through the archive's own degradation, or of synthetic camera-like
frames when no folder is given. First table: each encoder setting on one thread (median ms a
frame) and its bytes; every one is lossless (checked), so a setting changes bytes and time, never
pixels. Second table: `write_restorations` (the service's own code: provenance, encode, blob
write with fsync into a LocalStore in a temporary folder) for the whole batch on 1 thread and on
`ENCODE_THREADS` (one per core this process may use), the two taking turns `--repeat` times.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.restorations import cache, provenance
from app.restorations.provenance import Method, OutputFormat
from app.storage.local import LocalStore
from models.data import find_images, make_pair
from models.degradation import Profile
from models.engines import synthetic_frames
from models.restorer import Restorer

PROFILE = Profile.parse("400:2:webp-lossless")
# (label, Pillow save arguments): the served settings first, then what they replaced.
SETTINGS: list[tuple[str, dict[str, Any]]] = [
    (
        f"PNG zlib level {provenance.PNG_COMPRESS_LEVEL} (served)",
        {"format": "PNG", "compress_level": provenance.PNG_COMPRESS_LEVEL},
    ),
    ("PNG zlib level 6 (before 79f0534)", {"format": "PNG", "compress_level": 6}),
    (
        f"WebP lossless, method {provenance.WEBP_METHOD}, quality {provenance.WEBP_QUALITY} "
        "(served)",
        {
            "format": "WEBP",
            "lossless": True,
            "method": provenance.WEBP_METHOD,
            "quality": provenance.WEBP_QUALITY,
        },
    ),
    (
        "WebP lossless, method 4, quality 80 (before 79f0534)",
        {"format": "WEBP", "lossless": True, "method": 4, "quality": 80},
    ),
]


def restored_frames(restorer: Restorer, data: Path | None, count: int) -> list[np.ndarray]:
    """The model's restorations of `count` frames of `data` (synthetic frames without it)."""
    if data is None:
        lows = synthetic_frames(restorer.scale, count)
    else:
        lows = [make_pair(path, PROFILE).lr for path in find_images(data)[:count]]
    return restorer.restore(lows)


def encoder_rows(frames: list[np.ndarray]) -> list[tuple[str, float, float]]:
    """(setting, median ms a frame, mean kB a frame) on one thread; asserts each is lossless."""
    rows = []
    for label, arguments in SETTINGS:
        times, sizes = [], []
        for pixels in frames:
            image = Image.fromarray(pixels)
            out = io.BytesIO()
            started = time.perf_counter()
            image.save(out, **arguments)
            times.append(time.perf_counter() - started)
            sizes.append(len(out.getvalue()))
            with Image.open(io.BytesIO(out.getvalue())) as back:
                if not np.array_equal(np.asarray(back.convert("RGB")), pixels):
                    raise AssertionError(f"{label} changed the pixels")
        rows.append((label, statistics.median(times) * 1e3, statistics.mean(sizes) / 1e3))
    return rows


def batch_rows(frames: list[np.ndarray], repeat: int) -> list[tuple[int, float]]:
    """(threads, median ms for the batch) of `write_restorations`, 1 thread and ENCODE_THREADS
    taking turns (the order alternating each round)."""
    outputs = {f"{i:032x}": pixels for i, pixels in enumerate(frames)}
    labelled = {
        fid: SimpleNamespace(
            id=fid, original_sha256="0" * 64, stored_sha256="0" * 64, degradation_id="-"
        )
        for fid in outputs
    }
    counts = sorted({1, cache.ENCODE_THREADS})
    times: dict[int, list[float]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory(prefix="restored-encode-") as tmp:
        store = LocalStore(Path(tmp))
        for round_ in range(repeat):
            for threads in counts if round_ % 2 == 0 else counts[::-1]:
                with mock.patch.object(cache, "ENCODE_THREADS", threads):
                    started = time.perf_counter()
                    cache.write_restorations(
                        outputs,
                        labelled,  # type: ignore[arg-type]
                        Method.bicubic,  # no model identity needed to label the frames
                        OutputFormat.png,
                        store=store,
                        restorer=None,  # type: ignore[arg-type]
                    )
                    times[threads].append(time.perf_counter() - started)
    return [(n, statistics.median(times[n]) * 1e3) for n in counts]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="a folder of images (cctv/val)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=6)
    parser.add_argument("--engine", default="auto", help="the restore engine (CCTV_RESTORE_ENGINE)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the restores")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    restorer = Restorer.from_pretrained("default", engine=args.engine)
    frames = restored_frames(restorer, args.data, args.frames)
    height, width = frames[0].shape[:2]
    source = args.data or "synthetic frames"
    print(
        f"{len(frames)} frames restored by {restorer.name} ({restorer.engine}), "
        f"{width}x{height}, from {source}\n"
    )
    print("| encoder setting (lossless) | ms a frame, one thread | kB a frame |")
    print("|---|---|---|")
    for label, ms, kb in encoder_rows(frames):
        print(f"| {label} | {ms:.1f} | {kb:.1f} |")
    print(
        f"\nwrite_restorations, the batch of {len(frames)} as PNG into a LocalStore "
        f"(median of {args.repeat}, taking turns):\n"
    )
    print("| threads | ms for the batch | vs 1 thread |")
    print("|---|---|---|")
    batches = batch_rows(frames, args.repeat)
    for threads, ms in batches:
        print(f"| {threads} | {ms:.1f} | {batches[0][1] / ms:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
