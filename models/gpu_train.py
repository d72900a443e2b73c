"""One GPU training run inside a time budget: `python -m models.gpu_train --pack P --out DIR`.

For the lent GPU machine, which sees only the checkout: the frames come from a `cctv-archive pack`
file. The run measures its own speed first, sizes the cosine schedule to fit `--minutes` (with
time kept for validation), trains with bf16 autocast and a large batch, validates through
`Restorer`, and leaves in DIR: best.safetensors and last.safetensors, log.txt, history.json,
run.json, curve.png (validation PSNR-Y per set against steps) and the TensorBoard folder.
It runs on the CPU too (`--device cpu`, a few steps): that is how it is tested.

`--teacher NAME --teacher-ensemble 8` distils as `cctv-archive train --teacher` does: the teacher's
restorations of the packed training frames replace their HR frames as targets (validation stays
against the real frames). The targets are made before the training clock starts, so they come on
top of `--minutes` (seconds on a GPU: one fp16 pass per view and frame).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import TextIO

import torch

from models.edsr import EDSR, EDSRConfig
from models.plot import line_plot
from models.train import TrainConfig, autocast
from models.train import main as train


def steps_per_second(
    config: EDSRConfig,
    device: torch.device,
    *,
    batch: int,
    patch: int,
    steps: int = 10,
    channels_last: bool = False,
    compile: bool = False,
    bf16: bool = False,
) -> float:
    """Optimiser steps per second of this architecture on random patches (after warm-up);
    `bf16`: bf16 autocast on the CPU too (CUDA always trains in bf16)."""
    torch.manual_seed(0)
    network = EDSR(config).to(device).train()
    if channels_last:
        network = network.to(memory_format=torch.channels_last)
    forward = torch.compile(network) if compile else network
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4, fused=device.type == "cuda")
    lr = torch.rand(batch, 3, patch, patch, device=device) * 255
    hr = torch.rand(batch, 3, patch * config.scale, patch * config.scale, device=device) * 255
    if channels_last:
        lr = lr.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        with autocast(device, cpu_bf16=bf16):
            loss = torch.nn.functional.l1_loss(forward(lr).float(), hr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps / (time.perf_counter() - started)


class Tee:
    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
            s.flush()
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()


def draw_curve(out: Path) -> Path:
    history = json.loads((out / "history.json").read_text())
    series: dict[str, list[tuple[float, float]]] = {}
    for h in history:
        for name, value in h["val"].items():
            series.setdefault(name, []).append((h["step"], value))
        series.setdefault("mean", []).append((h["step"], h["psnr_y"]))
    path = out / "curve.png"
    line_plot(
        series,
        path,
        title=f"validation PSNR-Y during training ({out.name})",
        x_label="step",
        y_label="PSNR-Y (dB)",
    )
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pack", required=True, help="a `cctv-archive pack` file")
    parser.add_argument("--out", required=True, help="folder for weights, log and figures")
    parser.add_argument("--minutes", type=float, default=11.0, help="wall-time budget")
    parser.add_argument("--profile", default="400:2:webp-lossless")
    parser.add_argument("--n-resblocks", type=int, default=16)
    parser.add_argument("--n-feats", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--validations", type=int, default=6, help="how many during the run")
    parser.add_argument("--init", default="", help="start from a model's weights")
    parser.add_argument("--name", default="cctv-edsr-gpu")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=0, help="fixed step count (0: fit budget)")
    parser.add_argument("--val-limit", type=int, default=0)
    parser.add_argument("--prefetch", type=int, default=4, help="batches sampled ahead (thread)")
    parser.add_argument(
        "--oversample", action="append", default=[], metavar="CAMERA=K", help="as in train"
    )
    parser.add_argument(
        "--teacher", default="", help="distil: a model whose restorations become the targets"
    )
    parser.add_argument(
        "--teacher-ensemble", type=int, default=8, help="views the teacher averages per frame"
    )


def run(args: argparse.Namespace) -> Path:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: pass --device cpu for a test run")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    cuda = device.type == "cuda"
    started = time.monotonic()
    with (out / "log.txt").open("w") as log, contextlib.redirect_stdout(Tee(sys.stdout, log)):
        steps = args.steps
        if not steps:
            config = EDSRConfig(scale=2, n_resblocks=args.n_resblocks, n_feats=args.n_feats)
            rate = steps_per_second(
                config, device, batch=args.batch, patch=args.patch, channels_last=cuda
            )
            # 75% of what is left to training steps; data loading and validations take the rest.
            left = args.minutes * 60 - (time.monotonic() - started)
            steps = max(int(rate * left * 0.75), 10)
            print(f"measured {rate:.2f} steps/s on {device}: {steps} steps fit {args.minutes} min")
        config = TrainConfig(
            data=[],
            val=[],
            pack=args.pack,
            out=str(out),
            profile=args.profile,
            n_resblocks=0 if args.init else args.n_resblocks,
            n_feats=0 if args.init else args.n_feats,
            batch=args.batch,
            patch=args.patch,
            steps=steps,
            lr=args.lr,
            ema=args.ema,
            val_every=max(steps // max(args.validations, 1), 1),
            val_limit=args.val_limit,
            log_every=max(steps // 100, 1),
            name=args.name,
            device=str(device),
            channels_last=cuda,  # bf16 convolutions on tensor cores want NHWC
            init=args.init,
            oversample=args.oversample,
            prefetch=args.prefetch,
            teacher=args.teacher,
            teacher_ensemble=args.teacher_ensemble,
            teacher_engine="torch",  # on CUDA the only one; on the CPU (tests) the exact one
            max_minutes=max(args.minutes - (time.monotonic() - started) / 60 - 0.5, 0.1),
        )
        best = train(config)
        curve = draw_curve(out)
        print(f"best model: {best}; curve: {curve}; {(time.monotonic() - started) / 60:.1f} min")
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.gpu_train", description=__doc__)
    add_arguments(parser)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
