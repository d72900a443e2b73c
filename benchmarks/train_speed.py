"""Training throughput on this machine: steps/s of EDSR sizes and CPU options (prints a table).

    python benchmarks/train_speed.py --threads 2 [--compile] [--steps 10]

Each row times `--steps` optimiser steps (L1, Adam, batch 16 of 48x48 LR patches, x2) after
warm-up steps, on random patches: the data pipeline is not part of the figure.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from models.edsr import EDSR, EDSRConfig


def steps_per_second(
    config: EDSRConfig, *, batch: int, patch: int, steps: int, channels_last: bool, compile: bool
) -> float:
    torch.manual_seed(0)
    network = EDSR(config).train()
    if channels_last:
        network = network.to(memory_format=torch.channels_last)
    forward = torch.compile(network) if compile else network
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    lr = torch.rand(batch, 3, patch, patch) * 255
    hr = torch.rand(batch, 3, patch * config.scale, patch * config.scale) * 255
    if channels_last:
        lr = lr.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        loss = torch.nn.functional.l1_loss(forward(lr), hr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3 if compile else 2):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} threads, {platform.machine()}, "
        f"batch {args.batch} x {args.patch}px LR, {args.steps} timed steps"
    )
    print(f"{'model':<8} {'params':>8} {'options':<22} {'steps/s':>8} {'s/step':>7}")
    sizes = [(16, 48), (16, 64), (8, 32)]
    options = [(False, False), (True, False)] + ([(False, True)] if args.compile else [])
    for blocks, feats in sizes:
        config = EDSRConfig(scale=2, n_resblocks=blocks, n_feats=feats)
        params = sum(p.numel() for p in EDSR(config).parameters())
        for channels_last, compile in options:
            label = (
                "+".join(
                    n for n, on in (("channels-last", channels_last), ("compile", compile)) if on
                )
                or "eager"
            )
            rate = steps_per_second(
                config,
                batch=args.batch,
                patch=args.patch,
                steps=args.steps,
                channels_last=channels_last,
                compile=compile,
            )
            print(
                f"{blocks}x{feats:<5} {params / 1e3:>7.0f}k {label:<22} "
                f"{rate:>8.2f} {1 / rate:>7.2f}"
            )


if __name__ == "__main__":
    main()
