"""Training throughput on this machine: steps/s of EDSR sizes and CPU options (prints a table).

    python benchmarks/train_speed.py --threads 2 [--compile] [--bf16] [--steps 10]

Each row times `--steps` optimiser steps (L1, Adam, batch 16 of 48x48 LR patches, x2) after
3 warm-up steps, on random patches: the data pipeline is not part of the figure.
"""

from __future__ import annotations

import argparse
import platform

import torch

from models.edsr import EDSR, EDSRConfig
from models.gpu_train import steps_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile rows")
    parser.add_argument(
        "--bf16", action="store_true", help="also time bf16 autocast rows (fast with AMX)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} threads, {platform.machine()}, "
        f"batch {args.batch} x {args.patch}px LR, {args.steps} timed steps"
    )
    print(f"{'model':<8} {'params':>8} {'options':<22} {'steps/s':>8} {'s/step':>7}")
    sizes = [(16, 48), (16, 64), (8, 32)]
    options = [(False, False, False), (True, False, False)]
    options += [(False, True, False)] if args.compile else []
    options += [(False, False, True), (True, False, True)] if args.bf16 else []
    for blocks, feats in sizes:
        config = EDSRConfig(scale=2, n_resblocks=blocks, n_feats=feats)
        params = sum(p.numel() for p in EDSR(config).parameters())
        for channels_last, compile, bf16 in options:
            named = (("channels-last", channels_last), ("compile", compile), ("bf16", bf16))
            label = "+".join(n for n, on in named if on) or "eager"
            rate = steps_per_second(
                config,
                torch.device("cpu"),
                batch=args.batch,
                patch=args.patch,
                steps=args.steps,
                channels_last=channels_last,
                compile=compile,
                bf16=bf16,
            )
            print(
                f"{blocks}x{feats:<5} {params / 1e3:>7.0f}k {label:<22} "
                f"{rate:>8.2f} {1 / rate:>7.2f}"
            )


if __name__ == "__main__":
    main()
