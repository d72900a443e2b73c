"""Seconds to restore one stored frame, by model, frame size and batch, on this machine.

    python benchmarks/restore_speed.py [--model default] [--threads 2] [--repeat 5]
        [--engine torch|auto|openvino-int8|onnx-int8]

Prints a table; the issue's goal is one 200x200 frame under 0.5 s with the default model on
2 CPU cores.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.restorer import Restorer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default=None)
    parser.add_argument("--engine", default="torch", help="as CCTV_RESTORE_ENGINE")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    restorer = Restorer.from_pretrained(args.model, device=args.device, engine=args.engine)
    rng = np.random.default_rng(0)
    print(
        f"model {restorer.name} {restorer.info.config}, device {restorer.device}, "
        f"engine {restorer.engine}, "
        f"{args.threads} threads, torch {torch.__version__}, {platform.machine()}"
    )
    print(f"{'frame (LR)':>12} {'batch':>5} {'s/batch':>8} {'s/frame':>8} {'frames/s':>8}")
    for size, batch in [(200, 1), (200, 4), (360, 1), (640, 1)]:
        frames = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(batch)]
        restorer.restore(frames)  # warm-up: allocator and kernel selection
        if restorer.device.type == "cuda":
            torch.cuda.synchronize()
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            restorer.restore(frames)
            if restorer.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        t = float(np.median(times))
        print(f"{size:>5}x{size:<6} {batch:>5} {t:8.3f} {t / batch:8.3f} {batch / t:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
